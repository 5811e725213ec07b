"""Per-dataset keypoint heads and the embedding head (METHOD.md §1).

Both start with the ViTPose deconvolution stack: num_deconvs x [ConvTranspose2d(k4, s2, p1, no
bias), BN, ReLU], so a (B, D, 16, 12) feature map becomes (B, C, 64, 48) with two deconvs.
"""

from __future__ import annotations

import math

from torch import Tensor, nn


def deconv_stack(in_channels: int, channels: int, num_deconvs: int) -> nn.Sequential:
    """num_deconvs x [ConvTranspose2d(k4, s2, p1, no bias), BN, ReLU]: each doubles h and w."""
    layers: list[nn.Module] = []
    for i in range(num_deconvs):
        layers += [
            nn.ConvTranspose2d(
                in_channels if i == 0 else channels, channels, 4, stride=2, padding=1, bias=False
            ),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


def init_normal(module: nn.Module, std: float = 0.001) -> None:
    """ViTPose init: conv / deconv weights normal(std), biases 0, BN weight 1 and bias 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, std=std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


class HeatmapHead(nn.Module):
    """Deconv stack then a 1x1 conv to K maps: (B, D, h, w) -> (B, K, h*2^n, w*2^n).

    forward() gives what the keypoint loss sees: heatmaps for an MSE-trained head, spatial
    logits for a softmax-CE-trained one (softmax_sigma set). to_heatmaps() turns either into
    maps on the scale of the Gaussian targets (peak ~1 at a confident keypoint), which is what
    decoders, confidence thresholds and flip averaging expect.
    """

    def __init__(
        self, in_channels: int, num_keypoints: int, channels: int = 256, num_deconvs: int = 2,
        softmax_sigma: float | None = None,
    ) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.softmax_sigma = softmax_sigma
        self.deconv = deconv_stack(in_channels, channels, num_deconvs)
        self.final = nn.Conv2d(channels if num_deconvs else in_channels, num_keypoints, 1)
        init_normal(self)

    def forward(self, features: Tensor) -> Tensor:
        return self.final(self.deconv(features))

    def to_heatmaps(self, output: Tensor) -> Tensor:
        """forward()'s (B, K, H, W) output -> heatmaps (B, K, H, W) fp32.

        Softmax-CE heads: the spatial softmax is the target Gaussian divided by its mass, and a
        unit-peak Gaussian of std sigma (heatmap px) has mass 2 pi sigma^2, so softmax * 2 pi
        sigma^2 is back on the target's scale. Decoding raw logits would be wrong twice over:
        their maximum may be negative ("no peak") and DARK takes the log of the map.
        """
        if self.softmax_sigma is None:
            return output.float()
        mass = 2.0 * math.pi * self.softmax_sigma**2
        return output.float().flatten(2).softmax(dim=-1).view_as(output) * mass

    def heatmaps(self, features: Tensor) -> Tensor:
        """Decode-ready heatmaps (B, K, H, W) fp32 of features (B, D, h, w)."""
        return self.to_heatmaps(self(features))


class ResBlock(nn.Module):
    """conv3x3-BN-SiLU-conv3x3-BN + 1x1 conv shortcut, then SiLU: (B, C, h, w) -> (B, O, h, w)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.SiLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class EmbeddingHead(nn.Module):
    """Pixel embeddings for the prototypes: (B, D, h, w) -> (B, F, h*2^n, w*2^n) (METHOD.md §1).

    deconv stack -> ResBlock(channels -> res_channels) -> conv3x3-BN-SiLU -> conv1x1 to F.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 256,
        embed_dim: int = 64,
        num_deconvs: int = 2,
        res_channels: int = 64,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.deconv = deconv_stack(in_channels, channels, num_deconvs)
        self.res = ResBlock(channels if num_deconvs else in_channels, res_channels)
        self.conv = nn.Sequential(
            nn.Conv2d(res_channels, res_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(res_channels),
            nn.SiLU(inplace=True),
        )
        self.final = nn.Conv2d(res_channels, embed_dim, 1)
        init_normal(self)

    def forward(self, features: Tensor) -> Tensor:
        return self.final(self.conv(self.res(self.deconv(features))))

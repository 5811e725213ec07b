"""Per-dataset keypoint heads and the embedding head (METHOD.md §1).

Both start with the ViTPose deconvolution stack: num_deconvs x [ConvTranspose2d(k4, s2, p1, no
bias), BN, ReLU], so a (B, D, 16, 12) feature map becomes (B, C, 64, 48) with two deconvs.
"""

from __future__ import annotations

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
    """Deconv stack then a 1x1 conv to K heatmaps: (B, D, h, w) -> (B, K, h*2^n, w*2^n)."""

    def __init__(
        self, in_channels: int, num_keypoints: int, channels: int = 256, num_deconvs: int = 2
    ) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.deconv = deconv_stack(in_channels, channels, num_deconvs)
        self.final = nn.Conv2d(channels if num_deconvs else in_channels, num_keypoints, 1)
        init_normal(self)

    def forward(self, features: Tensor) -> Tensor:
        return self.final(self.deconv(features))


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

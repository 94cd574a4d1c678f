"""PyTorch CPU reference for bench/onnx-exec.ts: the same ViT-Ti/16- and ResNet-18-shaped networks, forward and one
training step (forward + backward + Adam) per image with the last 2 blocks or everything trainable; wall and CPU
time (time.process_time, all of torch's threads). Run by hand (not in CI), or through `bench/onnx-exec.ts --torch`:
python3 bench/onnx-exec-torch.py [image-size=224] [batch=4] [vit-depth=12] [--json]
"""
import json
import sys
import time

import torch
from torch import nn

args = [a for a in sys.argv[1:] if not a.startswith('--')]
as_json = '--json' in sys.argv
size = int(args[0]) if len(args) > 0 else 224
batch = int(args[1]) if len(args) > 1 else 4
depth = int(args[2]) if len(args) > 2 else 12
REPS = 3
torch.manual_seed(0)


class Block(nn.Module):
    def __init__(self, d, heads, mlp):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, mlp), nn.Linear(mlp, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, d=192, patch=16, heads=3, mlp=768):
        super().__init__()
        self.patch = nn.Conv2d(3, d, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, 1 + (size // patch) ** 2, d))
        self.blocks = nn.ModuleList([Block(d, heads, mlp) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(d, eps=1e-6), nn.Linear(d, 2)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x)[:, 0])

    def last(self, n):
        return list(self.blocks[-n:]) + [self.norm, self.head]


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x))))) + self.down(x))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for stage, w in enumerate([64, 128, 256, 512]):
            for i in range(2):
                blocks.append(Basic(cin, w, 2 if i == 0 and stage > 0 else 1))
                cin = w
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(512, 2)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    def last(self, n):
        return list(self.blocks[-n:]) + [self.fc]


def median(xs):
    return sorted(xs)[len(xs) // 2]


def timed(f):
    c0, t0 = time.process_time(), time.perf_counter()
    f()
    return (time.perf_counter() - t0) * 1000 / batch, (time.process_time() - c0) * 1000 / batch


def medians(ts):
    return {'wall': median([t[0] for t in ts]), 'cpu': median([t[1] for t in ts])}


def fmt(t):
    return f"{t['wall']:.1f} (cpu {t['cpu']:.1f})"


x = torch.randn(batch, 3, size, size)
y = torch.arange(batch) % 2
log = sys.stderr if as_json else sys.stdout
print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, image {size}px, batch {batch}, ms per image (cpu ms)', file=log)
results = {}
for key, name, model in [('vit', f'ViT-Ti/16-shaped depth {depth}', ViT()), ('resnet', 'ResNet-18-shaped', ResNet())]:
    model.eval()  # BatchNorm frozen, as natix runs it
    with torch.no_grad():
        model(x)
        fwd = medians([timed(lambda: model(x)) for _ in range(REPS)])
    results[key] = {'forward': fwd}
    for label, params in [('last:2', [p for m in model.last(2) for p in m.parameters()]), ('all', list(model.parameters()))]:
        for p in model.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, 1e-4)

        def step():
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

        step()
        steps = medians([timed(step) for _ in range(REPS)])
        results[key][label] = steps
        print(f'  {name} {label}: forward {fmt(fwd)}, train step {fmt(steps)} (step / forward {steps["cpu"] / fwd["cpu"]:.2f} cpu)', file=log)
if as_json:
    print(json.dumps({'threads': torch.get_num_threads(), 'torch': torch.__version__, 'results': results}))

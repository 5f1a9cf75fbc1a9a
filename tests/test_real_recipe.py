"""The real-data recipe end to end on miniature trees in the published layouts of CUB-200-2011, Stanford Cars and
FGVC-Aircraft: training both methods from a local weights file, the paper's linear probe, retrieval and the report."""
import json, subprocess
import numpy as np
import pytest
import torch, torchvision
from PIL import Image
from conftest import BIN, ROOT

N_CLASSES, PER_CLASS = 3, 4


def _jpeg(path, rng):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path, quality=90)


def write_cub(root, rng):
    r = root / 'CUB_200_2011'
    rows, i = [], 0
    for c in range(1, N_CLASSES + 1):
        for k in range(PER_CLASS):
            i += 1; rel = f"{c:03d}.Bird_{c}/Bird_{c}_{k:04d}.jpg"; _jpeg(r / 'images' / rel, rng)
            rows.append((i, rel, int(k % 2 == 0), c))
    (r / 'images.txt').write_text(''.join(f"{i} {rel}\n" for i, rel, _, _ in rows))
    (r / 'train_test_split.txt').write_text(''.join(f"{i} {t}\n" for i, _, t, _ in rows))
    (r / 'image_class_labels.txt').write_text(''.join(f"{i} {c}\n" for i, _, _, c in rows))
    (r / 'bounding_boxes.txt').write_text(''.join(f"{i} 1.0 2.0 20.0 18.0\n" for i, *_ in rows))
    (r / 'classes.txt').write_text(''.join(f"{c} {c:03d}.Bird_{c}\n" for c in range(1, N_CLASSES + 1)))
    return r


def write_cars(root, rng):
    import scipy.io as sio
    b = root / 'stanford_cars'; (b / 'devkit').mkdir(parents=True, exist_ok=True)
    names = np.array([f"Make{c} Model{c} 2012" for c in range(N_CLASSES)], dtype=object)
    sio.savemat(b / 'devkit/cars_meta.mat', {'class_names': names[None]})
    dt = [('bbox_x1', 'O'), ('bbox_y1', 'O'), ('bbox_x2', 'O'), ('bbox_y2', 'O'), ('class', 'O'), ('fname', 'O')]
    for split, mat in (('train', 'devkit/cars_train_annos.mat'), ('test', 'cars_test_annos_withlabels.mat')):
        rows = []
        for c in range(N_CLASSES):
            for k in range(PER_CLASS // 2):
                f = f"{split}_{c}_{k}.jpg"; _jpeg(b / f'cars_{split}' / f, rng); rows.append((1, 1, 30, 20, c + 1, f))
        sio.savemat(b / mat, {'annotations': np.array(rows, dtype=dt)[None]})
    return root


def write_aircraft(root, rng):
    d = root / 'fgvc-aircraft-2013b' / 'data'; d.mkdir(parents=True, exist_ok=True)
    variants = [f"Variant-{c}" for c in range(N_CLASSES)]
    (d / 'variants.txt').write_text('\n'.join(variants) + '\n')
    n = 1000000
    for split in ('trainval', 'test'):
        lines = []
        for v in variants:
            for _ in range(PER_CLASS // 2):
                n += 1; _jpeg(d / 'images' / f'{n}.jpg', rng); lines.append(f"{n} {v}")
        (d / f'images_variant_{split}.txt').write_text('\n'.join(lines) + '\n')
    return root


@pytest.mark.parametrize('dataset,writer', [('cub', write_cub), ('cars', write_cars), ('aircraft', write_aircraft)])
def test_real_recipe_on_miniature_tree(tmp_path, dataset, writer):
    from lcr.experiments import real_recipe
    root = writer(tmp_path / 'data', np.random.default_rng(0))
    torch.manual_seed(0)
    weights = tmp_path / 'resnet18.pth'      # stands in for ImageNet weights: a local torchvision state dict
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    path = real_recipe(dataset, root, tmp_path / 'runs', weights=str(weights), device='cpu', probe='paper', probe_epochs=2,
                       progress='none', backbone='resnet18', image_size=32, cache_size=40, batch_size=4, epochs=1,
                       method_kw=dict(queue_size=16, proj_dim=16, k=4))
    assert path == tmp_path / 'runs' / dataset / 'report' / 'report.md'
    text = path.read_text()
    assert '| paper, Table 2 | lcr |' in text, text[:2000]
    res = json.loads((path.parent / 'report.json').read_text())
    assert [r['method'] for r in res] == ['mocov2', 'lcr'] and all(r['dataset'] == dataset for r in res)
    assert all(r['probe']['protocol'] == 'paper' and r['n_test'] == N_CLASSES * PER_CLASS // 2 for r in res)
    assert all(r['n_classes'] == N_CLASSES for r in res)
    for f in ('loss_curves.png', 'attention.png', 'retrieval_mocov2.png', 'retrieval_lcr.png'):
        assert (path.parent / f).stat().st_size > 3000, f
    ck = torch.load(tmp_path / 'runs' / dataset / 'lcr' / 'checkpoint.pt', weights_only=True)
    assert ck['train_config']['weights'] == str(weights) and ck['train_config']['dataset'] == dataset


def test_real_recipe_errors(tmp_path):
    r = subprocess.run([str(BIN / 'lcr_experiments'), '--dataset', 'cub'], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and '--dataset cub needs --root' in r.stderr, r.stderr
    r = subprocess.run([str(BIN / 'lcr_experiments'), '--dataset', 'cub', '--root', str(tmp_path / 'nope'), '--out', str(tmp_path / 'o')],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and 'does not exist' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]

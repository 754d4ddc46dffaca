"""Tests of SynthActions: determinism, masks, the designed confusions, layouts, codecs, low light, resume."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from stia_kit.synth import (ACTIONS, SynthConfig, class_name, darken, generate_synth_actions, load_masks,
                            render_clip)
from stia_kit.synth.generate import clip_rng, group_scene
from stia_kit.synth.video import read_video, write_video

TINY = SynthConfig(clips_per_class=2, clips_per_group=1, num_frames=12, size=32)


def _render(action: str, seed: int, cfg: SynthConfig = TINY):
    return render_clip(action, np.random.default_rng(seed), cfg)


def _mean_motion(frames: np.ndarray) -> float:
    return float(np.abs(np.diff(frames.astype(np.int16), axis=0)).mean())


# ----------------------------------------------------------------------------- rendering
def test_same_seed_same_clip_different_seed_different():
    a, ma, ba = _render("wave", 1)
    b, mb, bb = _render("wave", 1)
    c, _, _ = _render("wave", 2)
    assert a.dtype == np.uint8 and a.shape == (12, 32, 32, 3)
    assert np.array_equal(a, b) and np.array_equal(ma, mb) and np.array_equal(ba, bb)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("action", ACTIONS)
def test_masks_and_boxes_match_the_actor(action):
    frames, masks, boxes = _render(action, 3, SynthConfig(clips_per_class=2, clips_per_group=1, num_frames=8, size=40))
    assert masks.dtype == bool and masks.shape == frames.shape[:3]
    assert boxes.shape == (8, 4)
    for m, (x0, y0, x1, y1) in zip(masks, boxes):
        assert m.sum() > 15  # the actor is visible in every frame
        assert m[y0:y1, x0:x1].sum() == m.sum()  # box contains the mask ...
        assert m[y0, x0:x1].any() and m[y1 - 1, x0:x1].any()  # ... and is tight
        assert m[y0:y1, x0].any() and m[y0:y1, x1 - 1].any()


def test_stand_is_sit_reversed_frame_for_frame():
    sit, sit_m, sit_b = _render("sit", 5)
    stand, stand_m, stand_b = _render("stand", 5)
    assert np.array_equal(stand, sit[::-1])
    assert np.array_equal(stand_m, sit_m[::-1]) and np.array_equal(stand_b, sit_b[::-1])
    assert not np.array_equal(stand, sit)  # yet the order differs


def test_run_moves_faster_than_walk_but_single_frames_look_alike():
    # Without pixel noise and camera shake the frame difference measures the motion alone.
    cfg = SynthConfig(clips_per_class=2, clips_per_group=1, num_frames=16, size=32, noise_std=0.0,
                      camera_jitter=0.0)
    walk = [_render("walk", s, cfg)[0] for s in range(4)]
    run = [_render("run", s, cfg)[0] for s in range(4)]
    assert np.mean([_mean_motion(f) for f in run]) > 1.5 * np.mean([_mean_motion(f) for f in walk])
    for w, r in zip(walk, run):  # same scene (same seed): mid frames have near-identical statistics
        mid_w, mid_r = w[8].astype(float), r[8].astype(float)
        assert abs(mid_w.mean() - mid_r.mean()) < 3.0 and abs(mid_w.std() - mid_r.std()) < 3.0


def test_drink_and_pour_differ_only_around_arm_and_cup():
    cfg = SynthConfig(clips_per_class=2, clips_per_group=1, num_frames=12, size=64)
    drink, dm, _ = _render("drink", 7, cfg)
    pour, pm, _ = _render("pour", 7, cfg)
    diff = np.abs(drink.astype(np.int16) - pour).max(axis=-1) > 0
    assert diff.any()
    assert np.array_equal(drink[0], pour[0])  # identical before the action starts
    changed = diff.any(axis=0)
    assert changed.mean() < 0.08  # a small region of the frame
    ys, xs = np.nonzero(changed)
    assert (ys.max() - ys.min()) * (xs.max() - xs.min()) < 0.2 * 64 * 64


def test_pick_and_push_share_the_reach():
    pick, _, _ = _render("pick", 9)
    push, _, _ = _render("push", 9)
    assert np.array_equal(pick[0], push[0])
    assert not np.array_equal(pick[-1], push[-1])


def test_darken_is_much_darker_and_records_params():
    frames, _, _ = _render("jump", 11)
    dark, params = darken(frames, np.random.default_rng(0), return_params=True)
    assert dark.shape == frames.shape and dark.dtype == np.uint8
    assert dark.mean() < 0.35 * frames.mean()
    assert 2.5 <= params.gamma <= 4.0
    assert np.array_equal(dark, darken(frames, np.random.default_rng(0)))


@pytest.mark.parametrize("field, value", [("num_frames", 2), ("size", 48), ("size", 30), ("classes", ("fly", "run")),
                                          ("clips_per_group", 5), ("noise_std", -1.0), ("layouts", ("kinetics",)),
                                          ("test_fraction", 1.0), ("clips_per_class", 1.5)])
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=rf"SynthConfig\.{field}"):
        SynthConfig(**{"clips_per_class": 4, "clips_per_group": 2, field: value})


@pytest.mark.parametrize("size", [64, 112])
def test_codec_round_trip_is_close(tmp_path, size):
    import decord
    frames, _, _ = _render("walk", 13, SynthConfig(clips_per_class=2, clips_per_group=1, num_frames=8, size=size))
    path = tmp_path / "clip.avi"
    write_video(path, frames, 15)
    via_av = read_video(path)
    via_decord = decord.VideoReader(str(path)).get_batch(list(range(8))).asnumpy()
    for decoded in (via_av, via_decord):
        assert decoded.shape == frames.shape
        assert np.abs(decoded.astype(np.int16) - frames).mean() < 4.0


# ----------------------------------------------------------------------------- dataset on disk
@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, SynthConfig]:
    root = tmp_path_factory.mktemp("synth")
    cfg = SynthConfig(classes=("drink", "pour", "sit", "walk"), clips_per_class=4, clips_per_group=1,
                      num_frames=10, size=32, layouts=("ucf101", "hmdb51", "arid"))
    generate_synth_actions(root, cfg, progress=False)
    return root, cfg


def test_ucf101_layout(dataset):
    root, cfg = dataset
    lists = root / "ucfTrainTestlist"
    class_ind = (lists / "classInd.txt").read_text().split("\n")
    assert class_ind[:4] == ["1 Drink", "2 Pour", "3 Sit", "4 Walk"]
    for split in (1, 2, 3):
        train = [line.split() for line in (lists / f"trainlist0{split}.txt").read_text().splitlines()]
        test = (lists / f"testlist0{split}.txt").read_text().splitlines()
        assert len(train) + len(test) == 16 and test
        for rel, label in train:
            cls = rel.split("/")[0]
            assert int(label) == ["Drink", "Pour", "Sit", "Walk"].index(cls) + 1
            assert (root / "UCF-101" / rel).is_file()
        train_groups = {rel.split("_")[-2] for rel, _ in train}
        test_groups = {rel.split("_")[-2] for rel in test}
        assert not train_groups & test_groups  # no actor in both
    assert (root / "UCF-101/Drink/v_Drink_g01_c01.avi").is_file()
    assert (lists / "testlist01.txt").read_text() != (lists / "testlist02.txt").read_text()


def test_hmdb51_and_arid_layouts(dataset):
    root, cfg = dataset
    for action in cfg.classes:
        lines = (root / f"testTrainMulti_7030_splits/{action}_test_split1.txt").read_text().splitlines()
        assert len(lines) == 4
        for line in lines:
            name, tag = line.rstrip().split(" ")
            assert line.endswith(" ") and tag in {"1", "2"}
            assert (root / "hmdb51_org" / action / name).is_file()
    mapping = (root / "splits_v1/mapping_table.txt").read_text().splitlines()
    assert mapping == ["0\tDrink", "1\tPour", "2\tSit", "3\tWalk"]
    rows = [line.split("\t") for line in (root / "splits_v1/ARID_split1_train.txt").read_text().splitlines()]
    rows += [line.split("\t") for line in (root / "splits_v1/ARID_split1_test.txt").read_text().splitlines()]
    assert len(rows) == 16
    for index, label, rel in rows:
        assert rel.split("/")[0] == ["Drink", "Pour", "Sit", "Walk"][int(label)]
        assert (root / "clips_v1" / rel).is_file()
    # extra layouts share the encoded bytes
    a, b = root / "UCF-101/Sit/v_Sit_g02_c01.avi", root / "clips_v1/Sit/Sit_2_1.avi"
    assert a.read_bytes() == b.read_bytes()


def test_every_video_decodes_to_num_frames_with_both_readers(dataset):
    import av
    import decord
    root, cfg = dataset
    videos = sorted(root.rglob("*.avi"))
    assert len(videos) == 3 * 16
    for path in videos:
        assert len(decord.VideoReader(str(path))) == cfg.num_frames, path
        with av.open(str(path)) as container:
            assert sum(1 for _ in container.decode(video=0)) == cfg.num_frames, path


def test_masks_npz_beside_clips(dataset):
    root, cfg = dataset
    masks, boxes, meta = load_masks(root / "UCF-101/Walk/v_Walk_g03_c01.avi")
    assert masks.shape == (10, 32, 32) and boxes.shape == (10, 4)
    assert meta["action"] == "walk" and meta["group"] == 3 and "cycles_per_s" in meta["speed"]
    _, ref_masks, ref_boxes = render_clip("walk", clip_rng(cfg, "walk", 2), cfg, scene=group_scene(cfg, 3))
    assert np.array_equal(masks, ref_masks) and np.array_equal(boxes, ref_boxes)


def test_regenerate_is_noop_and_resume_rewrites_only_missing(dataset):
    root, cfg = dataset
    manifest = root / "synth_actions.json"
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    again = generate_synth_actions(root, cfg, progress=False)
    assert again.generated == 0 and again.skipped == 16
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before
    victim = root / "UCF-101/Pour/v_Pour_g02_c01.avi"
    victim.unlink()
    resumed = generate_synth_actions(root, cfg, progress=False)
    assert resumed.generated == 1 and resumed.content_hash == again.content_hash
    kept = root / "UCF-101/Pour/v_Pour_g01_c01.avi"
    assert kept.stat().st_mtime_ns == before[kept]
    assert os.path.samefile(victim, root / "clips_v1/Pour/Pour_2_1.avi")  # link refreshed
    assert manifest.exists()
    with pytest.raises(ValueError, match="different config"):
        generate_synth_actions(root, SynthConfig(classes=cfg.classes, clips_per_class=4, clips_per_group=1,
                                                 num_frames=10, size=32, seed=1), progress=False)


def test_lowlight_dataset_is_dark_with_clean_ground_truth(tmp_path):
    cfg = SynthConfig(classes=("jump", "turn"), clips_per_class=2, clips_per_group=1, num_frames=8, size=32)
    dark_cfg = SynthConfig(**{**cfg.__dict__, "lowlight": True})
    normal = generate_synth_actions(tmp_path / "normal", cfg, progress=False)
    dark = generate_synth_actions(tmp_path / "dark", dark_cfg, progress=False, workers=2)
    assert normal.content_hash != dark.content_hash
    rel = "UCF-101/Turn/v_Turn_g02_c01.avi"
    clean = read_video(tmp_path / "dark/clean" / rel)
    reference = read_video(tmp_path / "normal" / rel)
    dark_frames = read_video(tmp_path / "dark" / rel)
    assert np.abs(clean.astype(np.int16) - reference).mean() < 4.0  # lossless GT vs MJPEG normal clip
    assert dark_frames.mean() < 0.35 * clean.mean()
    meta = load_masks(tmp_path / "dark" / rel)[2]
    assert 2.5 <= meta["darken"]["gamma"] <= 4.0


def test_workers_do_not_change_the_output(tmp_path):
    cfg = SynthConfig(classes=("run", "wave"), clips_per_class=2, clips_per_group=1, num_frames=6, size=32)
    one = generate_synth_actions(tmp_path / "a", cfg, progress=False, workers=1)
    two = generate_synth_actions(tmp_path / "b", cfg, progress=False, workers=2)
    assert one.content_hash == two.content_hash
    assert class_name("run") == "Run"

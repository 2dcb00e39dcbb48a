#!/usr/bin/env python3
"""Turns a pack written by veil-train-pack (layout: engine/train/data/utk_pack.h) back into a prepared
set that the trainers open (engine/train/data/utk_dataset.h): crops128.u8, desc.f32, desc_flip.f32
and the pseudonym table (pseudonyms.f32, .txt) when packed, index.tsv and DONE (written last). For a machine without OpenCV's C++ library but with
Python's cv2, as the GPU image (tools/train_gpu.sh).

usage: train_unpack.py PACK OUT      (OUT must not exist; it is written as OUT.tmp, then renamed)
"""
import os
import shutil
import sys

import cv2
import numpy as np

SIDE = 128


def main(pack, out):
    if os.path.exists(out):
        sys.exit(f"train_unpack: {out} exists")
    with open(os.path.join(pack, "PACKED")) as f:
        n = int(f.read().split()[0])
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    jpegs = np.fromfile(os.path.join(pack, "crops.jpg.bin"), np.uint8)
    offsets = np.fromfile(os.path.join(pack, "crops.offsets"), "<u8")
    if len(offsets) != n + 1 or offsets[0] != 0 or offsets[-1] != len(jpegs) or (np.diff(offsets) <= 0).any():
        sys.exit("train_unpack: crops.offsets does not match PACKED and crops.jpg.bin")
    crops = np.empty((n, SIDE, SIDE, 3), np.uint8)
    for i in range(n):
        img = cv2.imdecode(jpegs[offsets[i]:offsets[i + 1]], cv2.IMREAD_COLOR)  # BGR
        if img is None or img.shape != (SIDE, SIDE, 3):
            sys.exit(f"train_unpack: crop {i} is missing or not {SIDE}x{SIDE} colour")
        crops[i] = img
    crops.tofile(os.path.join(tmp, "crops128.u8"))
    for name in ("index.tsv", "desc.f32", "desc_flip.f32", "pseudonyms.f32", "pseudonyms.txt"):
        if os.path.exists(os.path.join(pack, name)):
            shutil.copyfile(os.path.join(pack, name), os.path.join(tmp, name))
    with open(os.path.join(tmp, "DONE"), "w") as f:
        f.write(f"{n}\n")
    for name in os.listdir(tmp):  # durable before the folder gets its name
        fd = os.open(os.path.join(tmp, name), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    os.rename(tmp, out)
    fd = os.open(os.path.dirname(os.path.abspath(out)), os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    print(f"train_unpack: {n} faces in {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

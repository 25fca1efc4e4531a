#!/usr/bin/env bash
# Build the substitute training stores for GACN, MFIF-GAN and GIPC-GAN from the MFI-WHU pairs
# (see datasets/README.md for the leakage policy).  Usage: prepare_substitute.sh SHARED_DIR OUT_DIR
set -euo pipefail
shared=${1:-../shared}
out=${2:-stores}
mkdir -p "$out"
python -m fusion_tf.data.all_in_focus build --pairs "$shared/data/mfi_whu_30" \
    --gacn-weights "$shared/reference/gacn/weights/GACN_state_dict_pytorch_layout.npz" -o "$out/mfiwhu_aif"
python -m fusion_tf.data.all_in_focus crop "$out/mfiwhu_aif" -o "$out/mfiwhu_aif_256" --size 256 --stride 128
fusion-tf prepare gacn --images "$out/mfiwhu_aif_256/images" --masks "$out/mfiwhu_aif_256/masks" -o "$out/gacn_mfiwhu.h5"
fusion-tf prepare mfifgan --images "$out/mfiwhu_aif_256/images" --masks "$out/mfiwhu_aif_256/masks" -o "$out/mfifgan_mfiwhu.h5"
fusion-tf prepare gipcgan --images "$out/mfiwhu_aif/images" --masks "$out/mfiwhu_aif/masks" -o "$out/gipcgan_mfiwhu.h5"

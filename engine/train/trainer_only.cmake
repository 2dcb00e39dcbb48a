# VEIL_TRAINER_ONLY: veil-train-gan alone, from LibTorch and libsodium (plus the nlohmann/json header),
# for a GPU machine that has LibTorch with CUDA but neither OpenCV nor protobuf. It trains and writes
# checkpoints (the same files a full build reads); a full build exports the model files from them:
#   veil-train-gan --minutes 0 --resume-from CHECKPOINT --export DIR
# Recipe for such a machine: tools/train_gpu.sh. Included by the top-level CMakeLists.txt.
find_package(Torch REQUIRED)  # a PyTorch wheel: CMAKE_PREFIX_PATH=$(python3 -c "import torch; print(torch.utils.cmake_prefix_path)")
find_package(nlohmann_json 3.10 REQUIRED)
find_path(SODIUM_INCLUDE_DIR sodium.h REQUIRED)
find_library(SODIUM_LIBRARY NAMES sodium REQUIRED)

set(VEIL_FACE_API_MODELS_DIR "${PROJECT_SOURCE_DIR}/.cache/face-api/package/model"
    CACHE PATH "Default folder of the face-api model files (the recognizer is the frozen identity loss)")

add_executable(veil-train-gan
  keys/src/status.cc
  keys/src/fs.cc
  keys/src/secret.cc
  engine/src/runtime.cc
  engine/src/tfjs_weights.cc
  engine/src/model_checksums.cc
  engine/src/nets/tensor_util.cc
  engine/src/nets/face_recognition_net.cc
  engine/src/identity/attribute_encoder.cc
  engine/src/identity/generator.cc
  engine/train/common/checkpoint_archive.cc
  engine/train/common/training_log.cc
  engine/train/data/utk_dataset.cc
  engine/train/gan/discriminator.cc
  engine/train/gan/gan_trainer.cc
  tools/cli.cc
  tools/stop_signal.cc
  tools/train_gan_main.cc)
target_include_directories(veil-train-gan PRIVATE keys/include engine/include engine/src engine/train tools
                           ${SODIUM_INCLUDE_DIR})
target_compile_definitions(veil-train-gan PRIVATE VEIL_TRAINER_ONLY=1
  VEIL_FACE_API_MODELS_DIR="${VEIL_FACE_API_MODELS_DIR}" VEIL_VERSION="${VEIL_PRODUCER_VERSION}")
# Keep libtorch_cuda although no symbol of it is named: CUDA registers itself when it loads, and an
# --as-needed link would drop it and train on the CPU.
target_link_options(veil-train-gan PRIVATE -Wl,--no-as-needed)
target_link_libraries(veil-train-gan PRIVATE ${TORCH_LIBRARIES} ${SODIUM_LIBRARY} nlohmann_json::nlohmann_json
                      Threads::Threads veil_warnings)

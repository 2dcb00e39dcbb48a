# The identity renderer (issue 4): attribute encoder E and generator G, inference only.
# Included at the end of engine/CMakeLists.txt; training (discriminator, losses) is in engine/train/gan.
# The networks themselves (attribute_encoder.cc, generator.cc) are in veil::engine_nets.
target_sources(veil_engine PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/generator_renderer.cc
  ${CMAKE_CURRENT_LIST_DIR}/steer.cc)

# Where FaceRenderer looks for veil-encoder-v1.veilmodel and veil-generator-v1.veilmodel when
# neither the params nor $VEIL_MODELS_DIR say.
set(VEIL_MODELS_DIR "${PROJECT_SOURCE_DIR}/models" CACHE PATH "Default folder of Veil's own model files")
set_property(SOURCE ${CMAKE_CURRENT_LIST_DIR}/generator_renderer.cc APPEND PROPERTY
  COMPILE_DEFINITIONS VEIL_MODELS_DIR="${VEIL_MODELS_DIR}")

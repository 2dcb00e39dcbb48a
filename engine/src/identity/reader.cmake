target_sources(veil_engine PRIVATE ${CMAKE_CURRENT_LIST_DIR}/pseudonym_reader.cc)

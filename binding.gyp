{
  "targets": [
    {
      "target_name": "dorsal_clock",
      "sources": ["native/clock.cc"],
      "cflags_cc": ["-O2", "-Wno-cast-function-type"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O2"] }
    },
    {
      "target_name": "dorsal_durable_file",
      "sources": ["native/durable-file.cc"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-O2"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O2"] }
    }
  ]
}

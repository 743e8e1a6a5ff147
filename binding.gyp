{
  "targets": [
    {
      "target_name": "dorsal_clock",
      "sources": ["native/clock.cc"],
      "cflags_cc": ["-O2", "-Wno-cast-function-type"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O2"] }
    }
  ]
}

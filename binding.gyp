{
  "targets": [
    {
      "target_name": "dorsal_clock",
      "sources": ["native/clock.c"],
      "cflags": ["-O2", "-std=c11"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O2", "-std=c11"] }
    }
  ]
}

{
  "targets": [
    {
      "target_name": "sonomics",
      "sources": [
        "native/src/addon.cc",
        "native/src/phantom.cc",
        "native/src/tracker.cc",
        "native/src/regions.cc",
        "native/src/pixels.cc",
        "native/src/segment.cc",
        "native/src/radiomics/region.cc",
        "native/src/radiomics/firstorder.cc",
        "native/src/radiomics/shape2d.cc",
        "native/src/radiomics/glcm.cc",
        "native/src/radiomics/glrlm.cc",
        "native/src/radiomics/glszm.cc",
        "native/src/radiomics/gldm.cc",
        "native/src/radiomics/ngtdm.cc",
        "native/src/radiomics/extract.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/src"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fopenmp-simd"],
      "conditions": [
        ["OS=='mac'", { "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES", "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3"] } }]
      ]
    }
  ]
}

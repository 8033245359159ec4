"""Build macros shared by every package of ktm."""

# Warnings for the project's own code. External headers come in as system
# headers, so their warnings do not fail the build.
KTM_COPTS = [
    "-std=c++20",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
]

def ktm_headers(name, hdrs, deps = [], visibility = ["//visibility:public"]):
    """A header-only library, plus a test that each header compiles alone.

    For every header H, a translation unit that includes only H is generated
    and compiled with the project's warnings; the test binary links them all.
    """
    native.cc_library(
        name = name,
        hdrs = hdrs,
        deps = deps,
        visibility = visibility,
    )
    pkg = native.package_name()
    outs = []
    cmds = []
    for h in hdrs:
        out = "_alone/%s/%s.cc" % (name, h.replace("/", "__"))
        outs.append(out)
        cmds.append("echo '#include \"%s/%s\"' > $(location %s)" % (pkg, h, out))
    main = "_alone/%s/main.cc" % name
    outs.append(main)
    cmds.append("echo 'int main() { return 0; }' > $(location %s)" % main)
    native.genrule(
        name = name + "_alone_srcs",
        outs = outs,
        cmd = " && ".join(cmds),
    )
    native.cc_test(
        name = name + "_headers_compile_alone",
        srcs = outs,
        copts = KTM_COPTS,
        deps = [":" + name],
        size = "small",
    )

def ktm_test(name, srcs, deps = [], size = "small", tags = [], **kwargs):
    """One Catch2 test binary."""
    native.cc_test(
        name = name,
        srcs = srcs,
        copts = KTM_COPTS,
        deps = deps + ["//tests:catch_main"],
        linkopts = ["-pthread"],
        size = size,
        tags = tags,
        **kwargs
    )

def ktm_tests(deps = [], size = "small", exclude = [], **kwargs):
    """One ktm_test per *_test.cpp file of the package."""
    for src in native.glob(["*_test.cpp"], exclude = exclude):
        ktm_test(
            name = src[:-len(".cpp")],
            srcs = [src] + native.glob(["*.hpp"]),
            deps = deps,
            size = size,
            **kwargs
        )

def ktm_binary(name, srcs, deps = [], **kwargs):
    native.cc_binary(
        name = name,
        srcs = srcs,
        copts = KTM_COPTS,
        deps = deps,
        linkopts = ["-pthread"],
        **kwargs
    )

def ktm_benchmark(name, srcs, deps = [], **kwargs):
    """A benchmark binary: tagged so that `bazel test //...` does not run it."""
    native.cc_binary(
        name = name,
        srcs = srcs,
        copts = KTM_COPTS,
        deps = deps + ["@benchmark"],
        linkopts = ["-pthread"],
        tags = ["benchmark", "manual"],
        **kwargs
    )

def ktm_fuzzer(name, srcs, deps = [], corpus = None):
    """A libFuzzer target and its regression test.

    `name` links with libFuzzer (build it with --config=fuzz; tools/fuzz.sh
    runs it). `name + "_regression"` is an ordinary test that runs the same
    entry point over the seed corpus and a seeded stream of random inputs,
    so every compiler and sanitizer configuration exercises it.
    """
    native.cc_binary(
        name = name,
        srcs = srcs,
        copts = KTM_COPTS,
        deps = deps,
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual", "fuzzer"],
    )
    native.cc_test(
        name = name + "_regression",
        srcs = srcs,
        copts = KTM_COPTS,
        deps = deps + ["//tests/fuzz:standalone_driver"],
        data = [corpus] if corpus else [],
        args = ["$(location %s)" % corpus] if corpus else [],
        size = "medium",
    )

namespace Lb.Tests;

/// <summary>
/// The Debian packages a test needs. <c>./test.sh</c> run as root installs them all (tests/install-deps.sh, the one
/// list); not root, a test whose package is missing skips with the package named instead of failing.
/// </summary>
public static class Requires
{
    /// <summary>Why a test cannot run here ("PACKAGE is not installed (...)"), or null when one of the files exists.</summary>
    public static string? Missing(string package, params string[] anyOf) =>
        anyOf.Any(File.Exists) ? null
            : $"{package} is not installed (apt-get install {package}; ./test.sh run as root installs it: tests/install-deps.sh)";

    /// <summary>Debian's chromium, which the stats page's browser test drives.</summary>
    public static string? Chromium() => Missing("chromium", "/usr/bin/chromium");

    /// <summary>clang and zlib1g-dev, which a NativeAOT publish links with.</summary>
    public static string? NativeAotToolchain() =>
        Missing("clang", "/usr/bin/clang") ?? Missing("zlib1g-dev", "/usr/include/zlib.h");

    /// <summary>systemd's systemd-analyze, which verifies the sample unit.</summary>
    public static string? SystemdAnalyze() => Missing("systemd", "/usr/bin/systemd-analyze", "/bin/systemd-analyze");
}

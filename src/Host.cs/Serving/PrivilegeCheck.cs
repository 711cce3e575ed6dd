using Lb.Rules;

namespace Lb.Host.Serving;

/// <summary>
/// Reads what <see cref="Privileges.Problems"/> decides on: this process's CapEff and the first port an unprivileged
/// process may bind (per network namespace). Capabilities are per thread; the main thread's (/proc/self/status) are
/// every thread's here, because lb never changes them after exec.
/// </summary>
public static class PrivilegeCheck
{
    const string UnprivilegedPortStart = "/proc/sys/net/ipv4/ip_unprivileged_port_start";

    /// <summary>One line per capability <paramref name="config"/> needs and this process lacks, then a hint; empty when none.</summary>
    public static string[] Problems(LbConfig config) =>
        Privileges.Problems(config, FirstUnprivilegedPort(), ReadOrEmpty("/proc/self/status"));

    static int FirstUnprivilegedPort() =>
        int.TryParse(ReadOrEmpty(UnprivilegedPortStart).Trim(), out var port) ? port : Privileges.DefaultUnprivilegedPortStart;

    static string ReadOrEmpty(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }
}

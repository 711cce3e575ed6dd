namespace Lb.Tests;

/// <summary>
/// The reliability table's source: each hostile-input or fault test records what it tried and what failed, one
/// tab-separated row per test in artifacts/reliability/, and test.sh prints them all as one table. The row is
/// written only after the test's assertions ran, so a count is never printed for a test that did not pass.
/// </summary>
public static class Reliability
{
    /// <param name="area">the README table's group: "requests", "http/1.1", "vrrp", "faults", "reload", ...</param>
    /// <param name="what">one line saying what was tried</param>
    /// <param name="cases">generated or hand-written inputs tried</param>
    /// <param name="faults">faults injected (kills, hangs, resets, flaps, reloads); 0 when none</param>
    /// <param name="requests">requests (or packets) sent through lb</param>
    /// <param name="failed">those that failed where the issue says none may</param>
    public static void Record(string area, string what, long cases, long faults, long requests, long failed)
    {
        var folder = Path.Combine(RepositoryRoot(), "artifacts", "reliability");
        Directory.CreateDirectory(folder);
        var row = string.Join('\t', area, what.Replace('\t', ' '), cases, faults, requests, failed);
        lock (Gate)
            File.AppendAllText(Path.Combine(folder, $"{area.Replace('/', '_')}.tsv"), row + "\n");
    }

    private static readonly object Gate = new();

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Lb.sln")))
                return dir.FullName;
        throw new InvalidOperationException("Lb.sln not found above the test binaries");
    }
}

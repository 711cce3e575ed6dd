using System.Diagnostics;
using System.Text.RegularExpressions;
using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>`lb hash-password` and `lb check` on `[stats]`, as a user runs them.</summary>
public sealed class StatsCliTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"lb-stats-cli-{Guid.NewGuid():N}");

    public StatsCliTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>Runs `lb hash-password` with <paramref name="stdin"/> piped in (not a terminal: one line is read).</summary>
    private static async Task<LbProgram.Result> HashPasswordAsync(string stdin, params string[] extra)
    {
        var info = LbProgram.StartInfo(["hash-password", .. extra]);
        info.RedirectStandardInput = true;
        using var process = Process.Start(info)!;
        await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(cancel.Token);
        return new LbProgram.Result(process.ExitCode, await stdout, await stderr);
    }

    private string Config(string stats)
    {
        var path = Path.Combine(_directory, "lb.toml");
        File.WriteAllText(path,
            "[listen]\nhttp = \"127.0.0.1:18080\"\nplain_http = \"proxy\"\n" +
            "[apps.app1]\nservers = [ { name = \"app1_1\", address = \"127.0.0.1:9101\" } ]\n" + stats);
        return path;
    }

    [Fact]
    public async Task Hash_password_prints_a_hash_that_lb_check_accepts()
    {
        var hashed = await HashPasswordAsync("a long and unusual pass phrase\n", "--iterations", "20000");

        Assert.Equal(0, hashed.ExitCode);
        var hash = Assert.Single(hashed.StdoutLines);
        Assert.Matches(new Regex(@"^pbkdf2-sha256\$20000\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$"), hash);

        var check = await LbProgram.RunAsync(["check", "-c", Config($"[stats]\npassword_hash = \"{hash}\"\n")]);
        Assert.Equal(0, check.ExitCode);

        File.WriteAllText(Path.Combine(_directory, "stats.pw"), hash + "\n");
        var fromFile = await LbProgram.RunAsync(["check", "-c", Config("[stats]\npassword_file = \"stats.pw\"\n")]);
        Assert.Equal(0, fromFile.ExitCode);
    }

    [Fact]
    public async Task Hash_password_refuses_a_well_known_password()
    {
        var hashed = await HashPasswordAsync("admin\n");

        Assert.Equal(1, hashed.ExitCode);
        Assert.Contains("well-known", hashed.Stderr);
        Assert.Empty(hashed.StdoutLines);
    }

    [Fact]
    public async Task Lb_check_refuses_the_seeds_admin_admin()
    {
        var admin = Lb.Rules.Password.Hash("admin", new byte[16], Lb.Rules.Password.MinIterations);

        var check = await LbProgram.RunAsync(["check", "-c", Config($"[stats]\nuser = \"admin\"\npassword_hash = \"{admin}\"\n")]);

        Assert.Equal(1, check.ExitCode);
        Assert.Contains(check.StdoutLines, l => Regex.IsMatch(l, @"lb\.toml:\d+:\d+: stats\.password_hash: the password is the user name"));
    }
}

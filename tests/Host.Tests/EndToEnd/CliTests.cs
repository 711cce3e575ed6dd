using System.Text.RegularExpressions;
using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>`lb check` and `lb explain` as a user runs them, on the files in samples/.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"lb-cli-tests-{Guid.NewGuid():N}");

    /// <summary>samples/three-apps.toml copied with the PEM files its [tls] paths name (relative to the file).</summary>
    private string ThreeAppsWithCertificates()
    {
        Directory.CreateDirectory(_directory);
        var config = Path.Combine(_directory, "three-apps.toml");
        File.Copy(LbProgram.Sample("three-apps.toml"), config);
        LbProgram.WriteSampleCertificates(_directory);
        return config;
    }

    [Fact]
    public async Task Check_on_the_broken_sample_prints_three_located_errors_and_exits_1()
    {
        var path = LbProgram.Sample("broken-three-mistakes.toml");
        var lines = File.ReadAllLines(path);
        int LineOf(string text) => Array.FindIndex(lines, l => l.Contains(text, StringComparison.Ordinal)) + 1;

        var result = await LbProgram.RunAsync(["check", "-c", path]);

        Assert.Equal(1, result.ExitCode);
        var located = result.StdoutLines
            .Select(l => Regex.Match(l, @"^(?<file>.+\.toml):(?<line>\d+):(?<col>\d+): (?<keyword>\S+): "))
            .Where(m => m.Success)
            .ToArray();
        Assert.Equal(3, located.Length);
        Assert.All(located, m => Assert.Equal(path, m.Groups["file"].Value));
        Assert.All(located, m => Assert.True(int.Parse(m.Groups["col"].Value) >= 1));
        // Each error points at the line of its mistake.
        Assert.Equal(
            [LineOf("timeout_conect"), LineOf("timeout_server"), LineOf("{ name = \"app1_2\" }")],
            located.Select(m => int.Parse(m.Groups["line"].Value)));
        Assert.Equal(["defaults.timeout_conect", "defaults.timeout_server", "apps.app1.servers[1].address"],
            located.Select(m => m.Groups["keyword"].Value));
        Assert.Contains("timeout_connect", result.StdoutLines[0]); // the did-you-mean hint
    }

    // Issue 16: one error count shared by every section hid "no listener is configured" behind any other mistake.
    [Fact]
    public async Task Check_on_a_node_typo_and_no_listener_reports_both_at_their_lines()
    {
        Directory.CreateDirectory(_directory);
        var config = Path.Combine(_directory, "typo-no-listener.toml");
        File.WriteAllText(config, "[node]\nnmae = \"lb1\"\n[apps.app1]\nservers = [ { name = \"app1_1\", address = \"127.0.0.1:9101\" } ]\n");

        var result = await LbProgram.RunAsync(["check", "-c", config]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(result.StdoutLines, l => l.StartsWith($"{config}:2:1: node.nmae: unknown key", StringComparison.Ordinal));
        Assert.Contains(result.StdoutLines, l => Regex.IsMatch(l, @"typo-no-listener\.toml:\d+:\d+: listen: no listener is configured \(hint: "));
    }

    [Fact]
    public async Task The_broken_sample_has_exactly_three_marked_mistakes()
    {
        var text = await File.ReadAllTextAsync(LbProgram.Sample("broken-three-mistakes.toml"));

        Assert.Equal(3, Regex.Matches(text, @"# MISTAKE \d").Count);
    }

    [Fact]
    public async Task Check_on_the_three_apps_sample_prints_a_one_line_summary_and_exits_0()
    {
        var config = ThreeAppsWithCertificates();

        var result = await LbProgram.RunAsync(["check", "-c", config]);

        Assert.Equal(0, result.ExitCode);
        var line = Assert.Single(result.StdoutLines);
        Assert.StartsWith("config OK: node lb1, 3 apps, 9 servers", line);
        Assert.Equal("", result.Stderr);
    }

    [Fact]
    public async Task Check_without_the_pem_files_names_the_missing_tls_files()
    {
        // The sample as shipped: its tls/ files are the user's to provide.
        Directory.CreateDirectory(_directory);
        var config = Path.Combine(_directory, "three-apps.toml");
        File.Copy(LbProgram.Sample("three-apps.toml"), config);

        var result = await LbProgram.RunAsync(["check", "-c", config]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(result.StdoutLines, l => l.Contains("tls.cert") && l.Contains("file not found"));
        Assert.Contains(result.StdoutLines, l => l.Contains("tls.key") && l.Contains("file not found"));
    }

    [Fact]
    public async Task The_three_apps_sample_mirrors_the_seed()
    {
        var config = ThreeAppsWithCertificates();
        var load = Lb.Host.Serving.ConfigFile.Load(config);

        Assert.True(load.IsValid);
        Assert.Equal("lb1", load.Config.Node.Name);
        Assert.Equal(["app1", "app2", "app3"], load.Config.Apps.Select(a => a.Name));
        Assert.All(load.Config.Apps, app => Assert.Equal(
            Enumerable.Range(1, 3).Select(i => $"{app.Name}_{i}"), app.Servers.Select(s => s.Name)));
        Assert.NotNull(load.Config.Listen.Http);
        Assert.NotNull(load.Config.Listen.Https);
        Assert.NotNull(load.Config.Tls);
        var tls = load.Config.Tls.Value;
        Assert.Equal(Path.Combine(_directory, "tls", "lb.crt"), tls.Cert);
        Assert.Equal(Path.Combine(_directory, "tls", "lb.key"), tls.Key);
        Assert.Equal(Path.Combine(_directory, "tls", "chain.crt"), tls.Chain?.Value);
        var defaults = load.Config.Defaults;
        Assert.Equal(3, defaults.Retries);                                 // retries 3
        Assert.True(defaults.Redispatch);                                  // option redispatch
        Assert.Equal(TimeSpan.FromMilliseconds(5000), defaults.TimeoutConnect);  // contimeout 5000
        Assert.Equal(TimeSpan.FromMilliseconds(50000), defaults.TimeoutClient);  // clitimeout 50000
        Assert.Equal(TimeSpan.FromMilliseconds(50000), defaults.TimeoutServer);  // srvtimeout 50000
    }

    [Fact]
    public async Task Explain_prints_the_forward_to_app1_with_the_stripped_backend_line()
    {
        var config = ThreeAppsWithCertificates();

        var result = await LbProgram.RunAsync(["explain", "-c", config, "https://site/app1/x?y"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains(result.StdoutLines, l => l.Contains("forward to app 'app1'"));
        Assert.Contains(result.StdoutLines, l => l.Trim() == "backend request line: GET /x?y HTTP/1.1");
        Assert.Contains(result.StdoutLines, l => l.Trim() == "X-Forwarded-Prefix: /app1");
    }

    [Theory]
    [InlineData("http://site/app1/x?y", "redirect 302 to https://site:18443/app1/x?y")]
    [InlineData("https://site/app2", "redirect 302 to /app2/")]
    [InlineData("https://site/app10/", "reject 404")]
    [InlineData("https://site/app1/../app3/z", "forward to app 'app3'")]
    public async Task Explain_prints_redirects_and_rejects(string url, string expected)
    {
        var config = ThreeAppsWithCertificates();

        var result = await LbProgram.RunAsync(["explain", "-c", config, url]);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains(result.StdoutLines, l => l.Contains(expected));
    }

    /// <summary>A valid config whose [tls] files are replaced by the given contents (null keeps the real one).</summary>
    private string ThreeAppsWith(string? cert = null, string? key = null, string? chain = null)
    {
        var config = ThreeAppsWithCertificates();
        var tls = Path.Combine(_directory, "tls");
        if (cert is not null)
            File.WriteAllText(Path.Combine(tls, "lb.crt"), cert);
        if (key is not null)
            File.WriteAllText(Path.Combine(tls, "lb.key"), key);
        if (chain is not null)
            File.WriteAllText(Path.Combine(tls, "chain.crt"), chain);
        return config;
    }

    // STYLE rule 3 and the issue's `lb check`: a config that cannot run must not pass the check.
    [Fact]
    public async Task Check_refuses_a_cert_file_that_holds_no_pem_certificate()
    {
        var config = ThreeAppsWith(cert: "not a certificate\n");

        var result = await LbProgram.RunAsync(["check", "-c", config]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(result.StdoutLines, l => Regex.IsMatch(l, @"three-apps\.toml:\d+:\d+: tls\.cert: "));
    }

    [Fact]
    public async Task Check_refuses_a_key_that_does_not_match_the_certificate()
    {
        using var other = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var config = ThreeAppsWith(key: other.ExportPkcs8PrivateKeyPem());

        var result = await LbProgram.RunAsync(["check", "-c", config]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(result.StdoutLines, l => Regex.IsMatch(l, @"three-apps\.toml:\d+:\d+: tls\.(key|cert): "));
    }

    [Fact]
    public async Task Check_refuses_a_chain_file_that_holds_no_certificate()
    {
        var config = ThreeAppsWith(chain: "");

        var result = await LbProgram.RunAsync(["check", "-c", config]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(result.StdoutLines, l => Regex.IsMatch(l, @"three-apps\.toml:\d+:\d+: tls\.chain: "));
    }

    [Fact]
    public async Task Run_with_an_unusable_certificate_exits_1_with_a_message_instead_of_crashing()
    {
        var config = ThreeAppsWith(cert: "not a certificate\n");

        var result = await LbProgram.RunAsync(["run", "-c", config], timeout: TimeSpan.FromSeconds(30));

        Assert.DoesNotContain("Unhandled exception", result.Stderr);
        Assert.Equal(1, result.ExitCode);
    }

    [Fact]
    public async Task Run_on_a_port_already_in_use_exits_1_with_a_message_instead_of_crashing()
    {
        var config = ThreeAppsWithCertificates();
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var text = File.ReadAllText(config)
            .Replace("127.0.0.1:18443", $"127.0.0.1:{port}")
            .Replace("127.0.0.1:18080", $"127.0.0.1:{FreePort.Next()}");
        File.WriteAllText(config, text);

        var result = await LbProgram.RunAsync(["run", "-c", config], timeout: TimeSpan.FromSeconds(30));

        Assert.DoesNotContain("Unhandled exception", result.Stderr);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"127.0.0.1:{port}", result.Stderr);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

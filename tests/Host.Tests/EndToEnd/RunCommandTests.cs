using System.Diagnostics;
using System.Text.RegularExpressions;
using Lb.Host.Demo;
using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// `lb run -c samples/three-apps.toml` as a separate process: the sample unchanged except for its listen ports
/// and server addresses, which point at echo backends this test starts, and PEM files where [tls] says.
/// </summary>
public sealed class RunCommandTests : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"lb-run-tests-{Guid.NewGuid():N}");
    private readonly List<EchoBackend> _backends = [];

    public async Task InitializeAsync()
    {
        for (var app = 1; app <= 3; app++)
            for (var server = 1; server <= 3; server++)
                _backends.Add(await EchoBackend.StartAsync($"app{app}_{server}"));
    }

    [Fact]
    public async Task The_three_apps_sample_runs_and_serves_every_app()
    {
        Directory.CreateDirectory(_directory);
        var pem = LbProgram.WriteSampleCertificates(_directory);
        var httpsPort = FreePort.Next();
        var httpPort = FreePort.Next();
        var text = File.ReadAllText(LbProgram.Sample("three-apps.toml"))
            .Replace("127.0.0.1:18443", $"127.0.0.1:{httpsPort}")
            .Replace("127.0.0.1:18080", $"127.0.0.1:{httpPort}");
        // "127.0.0.1:9101" .. "127.0.0.1:9303": app N, server M at 91NM-style ports in the sample.
        text = Regex.Replace(text, @"127\.0\.0\.1:9(?<app>\d)0(?<server>\d)", m =>
            _backends.Single(b => b.Name == $"app{m.Groups["app"].Value}_{m.Groups["server"].Value}").Address);
        var config = Path.Combine(_directory, "three-apps.toml");
        File.WriteAllText(config, text);

        using var process = Process.Start(LbProgram.StartInfo(["run", "-c", config]))!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stopped = false;
        try
        {
            using var start = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var first = await process.StandardOutput.ReadLineAsync(start.Token);
            Assert.Matches(@"^lb \S+: config OK: node lb1, 3 apps, 9 servers", first);
            _ = process.StandardOutput.ReadToEndAsync();

            using var client = PinnedTls.Client(pem.Thumbprint);
            foreach (var app in new[] { "app1", "app2", "app3" })
            {
                var seen = new HashSet<string>();
                for (var i = 0; i < 3; i++)
                {
                    var echo = Echo.Parse(await client.GetStringAsync($"https://127.0.0.1:{httpsPort}/{app}/page?i={i}"));
                    Assert.Equal(app, echo.App);
                    Assert.Equal($"/page?i={i}", echo.Target);
                    seen.Add(echo.Server);
                }
                Assert.Equal(3, seen.Count);
            }
            var plain = await RawHttp.GetAsync(httpPort, "/app3/x?y", tlsThumbprint: null);
            Assert.Equal($"https://127.0.0.1:{httpsPort}/app3/x?y", plain.Header("Location"));

            LbProgram.Terminate(process);
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await process.WaitForExitAsync(exit.Token);
            stopped = true;
            Assert.Equal(0, process.ExitCode);
        }
        finally
        {
            if (!stopped && !process.HasExited)
                process.Kill();
        }
        Assert.Equal("", await stderr);
    }

    public async Task DisposeAsync()
    {
        foreach (var backend in _backends)
            await backend.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// `lb demo` as a separate process, started with the command line samples/README.md gives (ports swapped for
/// free ones), checked the way the README's curl lines would, then stopped by its PID
/// (SIGTERM; the host treats it like Ctrl-C).
/// </summary>
public sealed class DemoTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    /// <summary>The `demo ...` arguments of the README's demo line, with its two ports replaced.</summary>
    private static string[] ReadmeDemoArguments(int httpsPort, int httpPort)
    {
        var readme = File.ReadAllLines(LbProgram.Sample("README.md"));
        var line = Assert.Single(readme, l => Regex.IsMatch(l, @"^dotnet \$lb demo\b"));
        var args = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(2).ToArray();
        var https = Array.IndexOf(args, "--https-port");
        var http = Array.IndexOf(args, "--http-port");
        Assert.True(https >= 0 && http >= 0, $"the README's demo line names both ports: {line}");
        args[https + 1] = httpsPort.ToString();
        args[http + 1] = httpPort.ToString();
        return args;
    }

    [Fact]
    public Task The_readme_demo_command_serves_the_must_show_requests_and_stops_cleanly_on_sigterm() =>
        ServeTheReadmeDemoAndStop(nativeBinary: null);

    /// <summary>The README's demo, run by `dotnet lb.dll` or by a NativeAOT <paramref name="nativeBinary"/>.</summary>
    internal static async Task ServeTheReadmeDemoAndStop(string? nativeBinary)
    {
        var httpsPort = FreePort.Next();
        var httpPort = FreePort.Next();
        using var process = Process.Start(LbProgram.StartInfo(ReadmeDemoArguments(httpsPort, httpPort), nativeBinary: nativeBinary))!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stopped = false;
        try
        {
            var configPath = await WaitForWelcomeAsync(process);
            var directory = Path.GetDirectoryName(configPath)!;
            var thumbprint = PinnedTls.ThumbprintOfPem(Path.Combine(directory, "lb.crt"));
            using var client = PinnedTls.Client(thumbprint);
            var https = $"https://127.0.0.1:{httpsPort}";

            // curl -k https://127.0.0.1:PORT/app1/anything
            var anything = await client.GetAsync($"{https}/app1/anything");
            var echo = Echo.Parse(await anything.Content.ReadAsStringAsync());
            Assert.Equal("app1", echo.App);
            Assert.Equal("/anything", echo.Target);
            Assert.Equal("127.0.0.1", echo.Header("X-Forwarded-For"));

            // curl -i http://127.0.0.1:PORT/app1/x?y=1
            var plain = await RawHttp.GetAsync(httpPort, "/app1/x?y=1", tlsThumbprint: null);
            Assert.Equal(302, plain.Status);
            Assert.Equal($"{https}/app1/x?y=1", plain.Header("Location"));

            // curl -ki https://127.0.0.1:PORT/app2
            var noSlash = await client.GetAsync($"{https}/app2");
            Assert.Equal(HttpStatusCode.Found, noSlash.StatusCode);
            Assert.EndsWith("/app2/", noSlash.Headers.Location?.OriginalString);

            // curl -ki https://127.0.0.1:PORT/app2/redirect
            var redirect = await client.GetAsync($"{https}/app2/redirect");
            Assert.Equal($"{https}/app2/welcome", redirect.Headers.Location?.OriginalString);

            // curl -ki https://127.0.0.1:PORT/app2/cookie
            var cookie = await client.GetAsync($"{https}/app2/cookie");
            Assert.Equal(["a=b; Path=/app2/"], cookie.Headers.GetValues("Set-Cookie").Where(c => !c.StartsWith("SRVID=")));

            LbProgram.Terminate(process);
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await process.WaitForExitAsync(exit.Token);
            stopped = true;
            Assert.Equal(0, process.ExitCode);
            Assert.False(Directory.Exists(directory), "the demo leaves its temporary folder behind");
        }
        finally
        {
            if (!stopped && !process.HasExited)
                process.Kill();
        }
        _ = await stderr;
    }

    /// <summary>Reads the demo's output until it says it is running; returns the config path it names.</summary>
    private static async Task<string> WaitForWelcomeAsync(Process process)
    {
        using var cancel = new CancellationTokenSource(StartTimeout);
        var seen = new List<string>();
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync(cancel.Token);
            if (line is null)
                Assert.Fail("lb demo exited before it was running:\n" + string.Join('\n', seen));
            seen.Add(line);
            var running = Regex.Match(line, @"lb demo is running \(config: (?<path>.+)\)");
            if (running.Success)
            {
                // Keep draining stdout so the demo never blocks on a full pipe.
                _ = process.StandardOutput.ReadToEndAsync();
                return running.Groups["path"].Value;
            }
        }
    }
}

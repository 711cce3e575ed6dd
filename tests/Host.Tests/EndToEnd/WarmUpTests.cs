using System.Diagnostics;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Lb.Host.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// `[node] warm_up` against real `lb run` processes: the warm-up runs before the listeners open, sends its load only
/// to its own private loopback copy (the configured backends see none of it), lets lb serve afterwards, and a SIGTERM
/// during it ends lb with exit 0 before anything was opened.
/// </summary>
public sealed partial class WarmUpTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly ConfigFolder _folder = new();
    private readonly int _https = FreePort.Next();
    private readonly int _http = FreePort.Next();
    private RecordingBackend _backend = null!;

    public async Task InitializeAsync() => _backend = await RecordingBackend.StartAsync("one_1");

    private string WriteConfig(string warmUp) => _folder.Write("lb.toml",
        $"[node]\nwarm_up = \"{warmUp}\"\n[listen]\nhttps = \"127.0.0.1:{_https}\"\nhttp = \"127.0.0.1:{_http}\"\nplain_http = \"proxy\"\n" +
        ConfigFolder.TlsSection + "[log]\naccess = \"off\"\n" +
        $"[apps.one]\nservers = [{{ name = \"one_1\", address = \"{_backend.Address}\" }}]\n");

    [GeneratedRegex(@"warm-up: (\d+) requests \((\d+) failed\)")]
    private static partial Regex WarmUpLine();

    [Fact]
    public async Task The_warm_up_runs_before_the_listeners_open_reaches_no_configured_backend_and_lb_serves_after_it()
    {
        var path = WriteConfig("2s");
        await using var lb = LbProcess.Launch(path);
        // While it warms up, the configured listener is not open yet.
        await lb.WaitForLineAsync(l => l.Contains("warming up for 2 s before listening"), TimeSpan.FromSeconds(30));
        var early = lb.Lines.ToArray();
        Assert.DoesNotContain(early, l => l.Contains("config OK"));
        Assert.False(await Accepts(_http), $"port {_http} accepted during the warm-up; lb said:\n{lb.Output}");

        var started = await lb.WaitForLineAsync(l => l.Contains("config OK"), TimeSpan.FromSeconds(60));
        output.WriteLine(lb.Output);
        var line = lb.Lines.Single(l => WarmUpLine().IsMatch(l));
        var match = WarmUpLine().Match(line);
        // The warm-up is bounded by time, so how many requests it makes depends on the machine (5 in 2 s on a busy
        // CI machine, thousands on a quiet one): it must have made some, and none may fail.
        Assert.True(long.Parse(match.Groups[1].Value) >= 1, line);
        Assert.Equal("0", match.Groups[2].Value);
        Assert.True(Array.IndexOf(lb.Lines.ToArray(), line) < Array.IndexOf(lb.Lines.ToArray(), started), "the warm-up ends before lb starts");
        Assert.Empty(_backend.Traffic());

        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false, UseCookies = false });
        using var response = await client.GetAsync($"http://127.0.0.1:{_http}/one/x");
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Single(_backend.Traffic());
    }

    [Fact]
    public async Task Sigterm_during_the_warm_up_ends_lb_with_exit_0_and_no_listener_ever_opened()
    {
        var path = WriteConfig("30s");
        await using var lb = LbProcess.Launch(path);
        await lb.WaitForLineAsync(l => l.Contains("warming up for 30 s"), TimeSpan.FromSeconds(30));
        var clock = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(1));
        lb.Signal(LbProgram.Sigterm);
        var exit = await lb.WaitForExitAsync(TimeSpan.FromSeconds(20));
        output.WriteLine(lb.Output);
        Assert.Equal(0, exit);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(22), $"exited {clock.Elapsed} after the signal: the 30 s warm-up was not cut short");
        Assert.DoesNotContain(lb.Lines, l => l.Contains("config OK"));
        Assert.False(await Accepts(_http));
        Assert.Empty(_backend.Traffic());
    }

    private static async Task<bool> Accepts(int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync("127.0.0.1", port).WaitAsync(TimeSpan.FromSeconds(2));
            return true;
        }
        catch (Exception e) when (e is SocketException or TimeoutException) { return false; }
    }

    public async Task DisposeAsync()
    {
        await _backend.DisposeAsync();
        _folder.Dispose();
    }
}

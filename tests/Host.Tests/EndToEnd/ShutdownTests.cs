using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Lb.Host.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// Graceful shutdown (issue 8) of a real `lb run` process without VRRP: on SIGTERM (or SIGINT) the listener
/// closes at once, so a new connection is refused; a request already in flight still gets its answer; then lb
/// exits 0. A request still running when `timeout_shutdown` passes is cut, and lb exits 0 all the same. (The
/// VRRP master's path, serving until idle and then handing over with priority 0, is in Vrrp.Tests.)
/// The slow request is a `/hold` on a <see cref="RecordingBackend"/>: it ends when the test releases it.
/// </summary>
public sealed class ShutdownTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(5);

    private readonly ConfigFolder _folder = new();
    private readonly HttpClient _client = new() { Timeout = TimeSpan.FromSeconds(60) };
    private RecordingBackend _backend = null!;
    private Process? _lb;

    public async Task InitializeAsync() => _backend = await RecordingBackend.StartAsync("s_1");

    /// <summary>Starts `lb run` on plain HTTP (proxy mode) in front of the backend; returns once it serves.</summary>
    private async Task<(Process Lb, int Port)> StartLbAsync(string timeoutShutdown)
    {
        var port = FreePort.Next();
        var config = _folder.Write("lb.toml",
            $"[listen]\nhttp = \"127.0.0.1:{port}\"\nplain_http = \"proxy\"\n" +
            $"[defaults]\ntimeout_shutdown = \"{timeoutShutdown}\"\n[log]\naccess = \"off\"\n" +
            $"[apps.s]\nhealth = {{ enabled = false }}\nservers = [ {{ name = \"s_1\", address = \"{_backend.Address}\" }} ]\n");
        var process = _lb = Process.Start(LbProgram.StartInfoWithSigint(["run", "-c", config]))!;
        _ = process.StandardError.ReadToEndAsync();
        using var start = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var first = await process.StandardOutput.ReadLineAsync(start.Token);
        Assert.Matches("^lb \\S+: config OK", first ?? "(no output)");
        _ = process.StandardOutput.ReadToEndAsync();
        return (process, port);
    }

    private static async Task<bool> AcceptsAsync(int port)
    {
        using var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync(IPAddress.Loopback, port).WaitAsync(TimeSpan.FromSeconds(2));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Starts a `/hold` request through lb and waits until the backend holds it.</summary>
    private async Task<Task<HttpResponseMessage>> InFlightAsync(int port)
    {
        var reply = _client.GetAsync($"http://127.0.0.1:{port}/s/hold");
        await _backend.WaitForHeldAsync(1, TimeSpan.FromSeconds(20));
        return reply;
    }

    private static async Task<TimeSpan> ExitAsync(Process process, Stopwatch since, TimeSpan bound)
    {
        try
        {
            await process.WaitForExitAsync().WaitAsync(bound);
        }
        catch (TimeoutException)
        {
            process.Kill();
            Assert.Fail($"lb did not exit within {bound.TotalSeconds:F0} s of the signal");
        }
        return since.Elapsed;
    }

    [Theory]
    [InlineData(LbProgram.Sigterm)]
    [InlineData(LbProgram.Sigint)]
    public async Task On_SIGTERM_or_SIGINT_lb_refuses_new_connections_finishes_the_in_flight_request_and_exits_0(int signal)
    {
        var (lb, port) = await StartLbAsync("20s");
        Assert.True(await AcceptsAsync(port));
        var inFlight = await InFlightAsync(port);

        var clock = Stopwatch.StartNew();
        LbProgram.Signal(lb, signal);
        var refused = await LbInstance.WaitUntilAsync(() => !AcceptsAsync(port).GetAwaiter().GetResult(), TimeSpan.FromSeconds(5));
        var stillRunning = !lb.HasExited && !inFlight.IsCompleted;
        await Task.Delay(300);
        _backend.ReleaseHeld();
        using var reply = await inFlight.WaitAsync(TimeSpan.FromSeconds(20));
        var body = await reply.Content.ReadAsStringAsync();
        var exited = await ExitAsync(lb, clock, TimeSpan.FromSeconds(20));

        output.WriteLine($"signal {signal}: refused after {refused?.TotalMilliseconds:F0} ms, exit after {exited.TotalMilliseconds:F0} ms");
        Assert.NotNull(refused);
        Assert.True(stillRunning, "lb exited, or the request ended, before the held request was released");
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
        Assert.Contains("\"server\": \"s_1\"", body);
        Assert.Equal(0, lb.ExitCode);
        var name = signal == LbProgram.Sigterm ? "SIGTERM" : "SIGINT";
        Lb.Tests.Reliability.Record("faults", $"{name}: listener closed, in-flight request drained, exit 0", 1, 1, 1, 0);
    }

    [Fact]
    public async Task A_request_longer_than_timeout_shutdown_is_cut_and_lb_still_exits_0()
    {
        var drain = TimeSpan.FromSeconds(1);
        var (lb, port) = await StartLbAsync("1s");
        var inFlight = await InFlightAsync(port);

        var clock = Stopwatch.StartNew();
        LbProgram.Terminate(lb);
        var exited = await ExitAsync(lb, clock, drain + Slack);
        Exception? cut = null;
        try
        {
            using var reply = await inFlight.WaitAsync(TimeSpan.FromSeconds(10));
            cut = new InvalidOperationException($"answered {(int)reply.StatusCode}");
        }
        catch (HttpRequestException e)
        {
            cut = e;
        }

        output.WriteLine($"exit after {exited.TotalMilliseconds:F0} ms; the held request: {cut.Message}");
        Assert.IsType<HttpRequestException>(cut);
        // lb waited for the request before cutting it: not sooner than the drain timeout.
        Assert.True(exited >= drain * 0.9, $"exited after {exited.TotalMilliseconds:F0} ms, before timeout_shutdown");
        Assert.Equal(0, lb.ExitCode);
        Lb.Tests.Reliability.Record("faults", "SIGTERM, request longer than timeout_shutdown: cut as meant, exit 0", 1, 1, 1, 0);
    }

    public async Task DisposeAsync()
    {
        if (_lb is { HasExited: false })
            _lb.Kill();
        _lb?.Dispose();
        _client.Dispose();
        await _backend.DisposeAsync();
        _folder.Dispose();
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Lb.Host.Tests.Support;
using Lb.Tests;
using Xunit;
using Xunit.Abstractions;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// Limits and timeouts (issue 3): server and global `maxconn` queue the excess up to `timeout_queue`, then 503;
/// `timeout_server` gives 504, `timeout_client` 408 or a closed connection; error pages come from `[errors]`.
/// Slow requests are `/hold` requests on a <see cref="RecordingBackend"/>: they end when the test says.
/// </summary>
public sealed class LimitsTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string QueuePage = "<html><body>custom 503: queue full</body></html>\n";
    private const string TimeoutPage = "<html><body>custom 504: too slow</body></html>\n";

    private readonly List<IAsyncDisposable> _started = [];

    public Task InitializeAsync()
    {
        MachineStalls.Start();
        return Task.CompletedTask;
    }

    private async Task<RecordingBackend> BackendAsync(string name)
    {
        var backend = await RecordingBackend.StartAsync(name);
        _started.Add(backend);
        return backend;
    }

    private async Task<LbInstance> StartLbAsync(string body, IReadOnlyDictionary<string, string>? files = null)
    {
        var lb = await LbInstance.StartAsync(body, files);
        _started.Insert(0, lb);
        return lb;
    }

    private static string App(string app, RecordingBackend server, string serverExtra = "") =>
        $"[apps.{app}]\nhealth = {{ enabled = false }}\n" +
        $"servers = [ {{ name = \"{server.Name}\", address = \"{server.Address}\"{serverExtra} }} ]\n";

    [Fact]
    public async Task A_request_beyond_a_servers_maxconn_waits_for_the_slot_and_succeeds_when_it_frees()
    {
        var server = await BackendAsync("one_1");
        var lb = await StartLbAsync("[defaults]\ntimeout_queue = \"10s\"\n" + App("one", server, ", maxconn = 1"));

        var first = lb.GetAsync("/one/hold");
        await server.WaitForHeldAsync(1);
        var second = lb.GetAsync("/one/second");
        await Task.Delay(500);

        Assert.False(second.IsCompleted, "the second request did not wait for the slot");
        Assert.Single(server.Traffic());
        server.ReleaseHeld();
        Assert.Equal(200, (await first).Status);
        var queued = await second;
        Assert.Equal(200, queued.Status);
        Assert.True(queued.Took >= TimeSpan.FromMilliseconds(450), $"took {queued.Took.TotalMilliseconds:F0} ms");
        Assert.Equal(["/hold", "/second"], server.Traffic().Select(r => r.Target));
    }

    // Failed before 2be14c7: lb answers 502 (built-in page, "no response") after 4 × timeout_queue.
    // ProxyEndpoint.SendToAsync reports a server queue timeout as FailureKind.ConnectFailed, so Retry.Decide retries
    // it `retries` times (same server: no other is usable) and then gives up with 502. The issue: "excess requests
    // queue up to timeout_queue then get 503".
    [Fact]
    public async Task A_request_queued_longer_than_timeout_queue_gets_503_with_the_errors_page()
    {
        var server = await BackendAsync("one_1");
        var lb = await StartLbAsync("[defaults]\ntimeout_queue = \"300ms\"\n[errors]\n503 = \"503.html\"\n" + App("one", server, ", maxconn = 1"),
            new Dictionary<string, string> { ["503.html"] = QueuePage });

        var first = lb.GetAsync("/one/hold");
        await server.WaitForHeldAsync(1);
        var sentMs = MachineStalls.NowMs;
        var second = await lb.GetAsync("/one/second");
        server.ReleaseHeld();

        Assert.True(second.Status == 503, $"{second.Status} after {second.Took.TotalMilliseconds:F0} ms: {second.Body}");
        Assert.Equal(QueuePage, second.Body);
        // timeout_queue, not several of them: a full queue is not a connection failure to retry. The bound is about lb,
        // so any time the whole machine stood still meanwhile is added (MachineStalls).
        Assert.True(second.Took < MachineStalls.Extend(TimeSpan.FromMilliseconds(1000), sentMs, output), $"took {second.Took.TotalMilliseconds:F0} ms");
        Assert.Equal(200, (await first).Status);
        Assert.Single(server.Traffic());
    }

    [Fact]
    public async Task A_client_pinned_to_a_full_server_waits_for_it_rather_than_moving()
    {
        var a = await BackendAsync("two_a");
        var b = await BackendAsync("two_b");
        var lb = await StartLbAsync("[defaults]\ntimeout_queue = \"10s\"\n[apps.two]\nhealth = { enabled = false }\n" +
            $"servers = [ {{ name = \"two_a\", address = \"{a.Address}\", maxconn = 1 }}, {{ name = \"two_b\", address = \"{b.Address}\" }} ]\n");

        var first = lb.GetAsync("/two/hold", "SRVID=two_a");
        await a.WaitForHeldAsync(1);
        var pinned = lb.GetAsync("/two/second", "SRVID=two_a");
        await Task.Delay(300);
        Assert.False(pinned.IsCompleted);
        a.ReleaseHeld();

        Assert.Equal(200, (await first).Status);
        var reply = await pinned;
        Assert.Equal("two_a", reply.Echo.Server);
        Assert.Empty(reply.SetCookies);
    }

    // Failed before 2be14c7: a new client (no cookie) is queued behind a server at its maxconn while another server
    // of the app is idle: AppRuntime.Usable counts a full server as usable, so the balancer picks it (every time, as
    // retries reset the round robin: see RetryTests), and the client waits timeout_queue for its slot before being
    // redispatched to the idle server. HAProxy's round robin skips a server at its maxconn (lb_fwrr.c,
    // fwrr_get_next_server: "the server is saturated or avoided") and queues only when every server is full.
    [Fact]
    public async Task New_clients_go_to_a_server_with_a_free_slot_instead_of_queuing_behind_a_full_one()
    {
        var a = await BackendAsync("two_a");
        var b = await BackendAsync("two_b");
        var lb = await StartLbAsync("[defaults]\ntimeout_queue = \"2s\"\n[apps.two]\nhealth = { enabled = false }\n" +
            $"servers = [ {{ name = \"two_a\", address = \"{a.Address}\", maxconn = 1 }}, {{ name = \"two_b\", address = \"{b.Address}\" }} ]\n");

        var held = lb.GetAsync("/two/hold", "SRVID=two_a");
        await a.WaitForHeldAsync(1);
        var replies = new List<Reply>();
        var sentMs = MachineStalls.NowMs;
        for (var i = 0; i < 4; i++)
            replies.Add(await lb.GetAsync($"/two/x?i={i}"));
        a.ReleaseHeld();
        await held;

        var summary = string.Join(", ", replies.Select(r => $"{r.Status} from {(r.Status == 200 ? r.Echo.Server : "-")} in {r.Took.TotalMilliseconds:F0} ms"));
        // Queuing would take timeout_queue (2 s); the bound adds any time the machine stood still (MachineStalls).
        var bound = MachineStalls.Extend(TimeSpan.FromMilliseconds(1000), sentMs, output);
        Assert.True(replies.All(r => r.Status == 200 && r.Echo.Server == "two_b" && r.Took < bound), summary);
    }

    [Fact]
    public async Task The_global_maxconn_queues_requests_of_every_app_then_503_after_timeout_queue()
    {
        var a = await BackendAsync("a_1");
        var b = await BackendAsync("b_1");
        var lb = await StartLbAsync("[defaults]\nmaxconn = 1\ntimeout_queue = \"300ms\"\n" + App("a", a) + App("b", b));

        var first = lb.GetAsync("/a/hold");
        await a.WaitForHeldAsync(1);
        var other = await lb.GetAsync("/b/x");
        a.ReleaseHeld();

        Assert.Equal(503, other.Status);
        Assert.Contains("503 Service Unavailable", other.Body);
        Assert.Empty(b.Traffic());
        Assert.Equal(200, (await first).Status);
        // With the slot free again, the other app is served.
        Assert.Equal(200, (await lb.GetAsync("/b/x")).Status);
    }

    [Fact]
    public async Task The_global_maxconn_queue_lets_a_request_through_when_the_slot_frees_in_time()
    {
        var a = await BackendAsync("a_1");
        var b = await BackendAsync("b_1");
        var lb = await StartLbAsync("[defaults]\nmaxconn = 1\ntimeout_queue = \"10s\"\n" + App("a", a) + App("b", b));

        var first = lb.GetAsync("/a/hold");
        await a.WaitForHeldAsync(1);
        var other = lb.GetAsync("/b/x");
        await Task.Delay(400);

        Assert.False(other.IsCompleted);
        Assert.Empty(b.Traffic());
        a.ReleaseHeld();
        Assert.Equal(200, (await first).Status);
        Assert.Equal(200, (await other).Status);
    }

    [Fact]
    public async Task A_server_slower_than_timeout_server_gives_504_with_the_errors_page_and_is_not_retried()
    {
        var slow = await BackendAsync("slow_1");
        var spare = await BackendAsync("slow_2");
        var lb = await StartLbAsync("[defaults]\ntimeout_server = \"500ms\"\n[errors]\n504 = \"504.html\"\n" +
            "[apps.slow]\nhealth = { enabled = false }\n" +
            $"servers = [ {{ name = \"slow_1\", address = \"{slow.Address}\" }}, {{ name = \"slow_2\", address = \"{spare.Address}\" }} ]\n",
            new Dictionary<string, string> { ["504.html"] = TimeoutPage });

        var reply = await lb.GetAsync("/slow/hold", "SRVID=slow_1");
        slow.ReleaseHeld();

        Assert.Equal(504, reply.Status);
        Assert.Equal(TimeoutPage, reply.Body);
        Assert.InRange(reply.Took, TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(3));
        Assert.Single(slow.Traffic());
        Assert.Empty(spare.Traffic());
    }

    [Fact]
    public async Task A_client_that_stalls_in_its_headers_gets_408_or_a_closed_connection_after_timeout_client()
    {
        var server = await BackendAsync("one_1");
        var lb = await StartLbAsync("[defaults]\ntimeout_client = \"1s\"\n" + App("one", server));

        var (answer, took) = await StallAsync(lb, "GET /one/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: ");

        Assert.True(answer.Length == 0 || answer.StartsWith("HTTP/1.1 408", StringComparison.Ordinal), answer);
        Assert.InRange(took, TimeSpan.FromMilliseconds(900), TimeSpan.FromSeconds(4));
        Assert.Empty(server.Traffic());
    }

    // Failed before 2be14c7: lb answers 502 Bad Gateway ("RequestBodyClient: ... Reading the request body timed out
    // due to data arriving too slowly. See MinRequestBodyDataRate.") about 5 s later: timeout_client is applied to
    // Kestrel's KeepAliveTimeout and RequestHeadersTimeout only, so a stalled body waits for Kestrel's
    // MinRequestBodyDataRate grace period (5 s), and the client's stall is reported as the server's fault (502, with
    // a Set-Cookie for that server). The issue: timeout_client → 408 (HAProxy `timeout client`: client inactivity at
    // any point of the request).
    [Fact]
    public async Task A_client_that_stalls_in_its_body_gets_408_or_a_closed_connection_after_timeout_client()
    {
        var server = await BackendAsync("one_1");
        var lb = await StartLbAsync("[defaults]\ntimeout_client = \"1s\"\ntimeout_server = \"30s\"\n" + App("one", server));

        var (answer, took) = await StallAsync(lb, "POST /one/form HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789");

        Assert.True(answer.Length == 0 || answer.StartsWith("HTTP/1.1 408", StringComparison.Ordinal), answer);
        Assert.InRange(took, TimeSpan.FromMilliseconds(900), TimeSpan.FromSeconds(4));
    }

    // ---- Request size limits (issue 17): max_request_body, per app over [defaults] -----------------------------

    private const long FortyMegabytes = 40_000_000;

    private async Task<SinkBackend> SinkAsync()
    {
        var sink = await SinkBackend.StartAsync();
        _started.Add(sink);
        return sink;
    }

    private static string SinkApp(string app, SinkBackend sink, string extra = "") =>
        $"[apps.{app}]\nhealth = {{ enabled = false }}\n{extra}" +
        $"servers = [ {{ name = \"{app}_1\", address = \"{sink.Address}\" }} ]\n";

    /// <summary>
    /// POSTs <paramref name="size"/> generated bytes over lb's plain-HTTP port, streamed (the client holds none of it):
    /// declared with a Content-Length or chunked. As curl does for large bodies, it sends `Expect: 100-continue` and
    /// sends the body only after `100 Continue`, so a refusal arrives before the body is on its way (with no timeout
    /// to race: the client waits as long as it takes). Bounded by 5 minutes only as a guard against a hang.
    /// </summary>
    private static async Task<(int Status, string Body)> UploadAsync(LbInstance lb, string target, long size, bool declared)
    {
        var handler = new SocketsHttpHandler { UseProxy = false, Expect100ContinueTimeout = TimeSpan.FromMinutes(5) };
        using var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{lb.HttpPort}{target}")
        {
            Content = new GeneratedContent(size, declared),
        };
        request.Headers.ExpectContinue = true;
        using var response = await client.SendAsync(request, cancel.Token);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync(cancel.Token));
    }

    // Failed before max_request_body: 413 from Kestrel's fixed 30,000,000-byte MaxRequestBodySize, for either framing.
    [Fact]
    public async Task A_40_MB_upload_streams_to_an_app_under_the_default_limit_declared_or_chunked()
    {
        var sink = await SinkAsync();
        var lb = await StartLbAsync(SinkApp("up", sink));

        var declared = await UploadAsync(lb, "/up/file", FortyMegabytes, declared: true);
        var chunked = await UploadAsync(lb, "/up/file", FortyMegabytes, declared: false);

        Assert.Equal((200, $"received {FortyMegabytes}"), declared);
        Assert.Equal((200, $"received {FortyMegabytes}"), chunked);
        Assert.Equal(2, sink.Completed);
    }

    // The app's limit is set on each request after routing, above Kestrel's listener-wide one ([defaults]) and below.
    [Fact]
    public async Task Each_app_gets_its_own_max_request_body_above_or_below_the_default()
    {
        var big = await SinkAsync();
        var small = await SinkAsync();
        var lb = await StartLbAsync("[defaults]\nmax_request_body = \"10MB\"\n" +
            SinkApp("big", big, "max_request_body = \"64MB\"\n") + SinkApp("small", small));

        Assert.Equal((200, $"received {FortyMegabytes}"), await UploadAsync(lb, "/big/file", FortyMegabytes, declared: false));
        var refused = await UploadAsync(lb, "/small/file", FortyMegabytes, declared: true);

        Assert.Equal(413, refused.Status);
        Assert.Contains("larger than small accepts (max_request_body 10MB)", refused.Body);
        Assert.Equal(0, small.Started);
    }

    [Fact]
    public async Task A_declared_body_over_the_apps_max_request_body_gets_413_before_anything_is_forwarded()
    {
        var sink = await SinkAsync();
        var lb = await StartLbAsync(SinkApp("up", sink, "max_request_body = \"1MB\"\n"));

        // The head only: lb must answer without waiting for (or reading) the body it announces.
        var reply = await RawHttp.SendAsync(lb.HttpPort,
            $"POST /up/file HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {(1 << 20) + 1}\r\n\r\n", tlsThumbprint: null);

        Assert.Equal(413, reply.Status);
        Assert.Equal("close", reply.Header("Connection"));
        Assert.Contains("413 Content Too Large", reply.Body);
        Assert.Equal(0, sink.Started);
        // Exactly the limit is accepted.
        Assert.Equal((200, $"received {1 << 20}"), await UploadAsync(lb, "/up/file", 1 << 20, declared: true));
    }

    [Fact]
    public async Task A_chunked_body_passing_the_apps_max_request_body_is_cut_with_413_and_not_replayed()
    {
        var sink = await SinkAsync();
        var lb = await StartLbAsync("[defaults]\nretries = 3\n" + SinkApp("up", sink, "max_request_body = \"1MB\"\n"));

        var (status, head) = await ChunkedPastLimitAsync(lb.HttpPort, "/up/file", (1 << 20) + 4096);

        Assert.True(status == 413, head);
        Assert.Contains("Connection: close", head, StringComparison.OrdinalIgnoreCase);
        // The backend saw the request start and never its end; nothing was sent again.
        Assert.InRange(sink.Started, 0, 1);
        Assert.Equal(0, sink.Completed);
        Assert.InRange(sink.Bytes, 0, 1 << 20);
        // The app still takes a body within its limit.
        Assert.Equal((200, "received 1000"), await UploadAsync(lb, "/up/file", 1000, declared: false));
    }

    [Fact]
    public async Task Request_headers_over_max_request_headers_get_431_and_are_not_forwarded()
    {
        var sink = await SinkAsync();
        var lb = await StartLbAsync("[defaults]\nmax_request_headers = \"2KB\"\n" + SinkApp("up", sink));

        var over = await RawHttp.GetAsync(lb.HttpPort, "/up/x", tlsThumbprint: null, [$"X-Big: {new string('a', 3000)}"]);
        var within = await RawHttp.GetAsync(lb.HttpPort, "/up/x", tlsThumbprint: null, [$"X-Big: {new string('a', 1000)}"]);

        Assert.Equal(431, over.Status);
        Assert.Equal(200, within.Status);
        Assert.Equal(1, sink.Started);
    }

    /// <summary>
    /// Sends a chunked POST of <paramref name="size"/> bytes in 16 KiB chunks without its last chunk, then reads what lb
    /// answers until it closes. The client stops after <paramref name="size"/> so lb has read everything sent when it
    /// answers (no unread bytes to turn its close into a reset). Returns the status and the response head.
    /// </summary>
    private static async Task<(int Status, string Head)> ChunkedPastLimitAsync(int port, string target, int size)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port, cancel.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"), cancel.Token);
        var chunk = new byte[16 * 1024];
        Array.Fill(chunk, (byte)'x');
        var chunkHead = Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n");
        try
        {
            for (var sent = 0; sent < size; sent += chunk.Length)
            {
                await stream.WriteAsync(chunkHead, cancel.Token);
                await stream.WriteAsync(chunk, cancel.Token);
                await stream.WriteAsync("\r\n"u8.ToArray(), cancel.Token);
            }
        }
        catch (IOException)
        {
            // lb may close once it has answered; its answer is still to be read.
        }
        using var received = new MemoryStream();
        try
        {
            await stream.CopyToAsync(received, cancel.Token);
        }
        catch (IOException)
        {
        }
        var text = Encoding.ASCII.GetString(received.ToArray());
        var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var head = headEnd < 0 ? text : text[..headEnd];
        return (head.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) ? int.Parse(head[9..12]) : 0, head);
    }

    /// <summary>
    /// Opens a TLS connection, sends <paramref name="partial"/> and then nothing; returns what lb sent back
    /// before closing (bounded by 15 s) and how long after the partial request it closed.
    /// </summary>
    private static async Task<(string Answer, TimeSpan Took)> StallAsync(LbInstance lb, string partial)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, lb.HttpsPort, cancel.Token);
        await using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = PinnedTls.Accept(lb.Thumbprint),
        }, cancel.Token);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(partial), cancel.Token);
        await tls.FlushAsync(cancel.Token);
        var clock = Stopwatch.StartNew();
        using var received = new MemoryStream();
        try
        {
            await tls.CopyToAsync(received, cancel.Token);
        }
        catch (IOException)
        {
            // A reset is a closed connection too.
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"lb kept the stalled connection open for 15 s; sent: {Encoding.ASCII.GetString(received.ToArray())}");
        }
        return (Encoding.ASCII.GetString(received.ToArray()), clock.Elapsed);
    }

    public async Task DisposeAsync()
    {
        foreach (var started in _started)
            await started.DisposeAsync();
    }
}

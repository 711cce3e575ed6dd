using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Xunit.Abstractions;

namespace Lb.Vrrp.Tests;

/// <summary>
/// Sockets of the test process inside a network namespace: a fresh thread joins the namespace (setns, which only
/// changes that thread) and a socket created on it belongs to that namespace for the rest of its life, whichever
/// thread uses it later. The thread ends after its work, so no pooled thread ever leaves the test's namespace.
/// </summary>
public static partial class Netns
{
    const int CloneNewNet = 0x40000000;

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);

    /// <summary>Runs <paramref name="work"/> on a new thread inside <paramref name="ns"/> and waits for it (bounded).</summary>
    public static T Run<T>(string ns, Func<T> work, TimeSpan? timeout = null)
    {
        T? result = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                Enter(ns);
                result = work();
            }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = $"netns {ns}" };
        thread.Start();
        if (!thread.Join(timeout ?? TimeSpan.FromSeconds(60))) throw new TimeoutException($"work in netns {ns} did not finish");
        if (error is not null) throw new InvalidOperationException($"in netns {ns}: {error.Message}", error);
        return result!;
    }

    /// <summary>Starts <paramref name="work"/> on a new background thread inside <paramref name="ns"/>.</summary>
    public static Task Start(string ns, Action work)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Enter(ns);
                work();
                done.TrySetResult();
            }
            catch (Exception e) { done.TrySetException(e); }
        }) { IsBackground = true, Name = $"netns {ns}" };
        thread.Start();
        return done.Task;
    }

    static void Enter(string ns)
    {
        using var handle = File.OpenHandle($"/var/run/netns/{ns}", FileMode.Open, FileAccess.Read);
        if (SetNs((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
            throw new Win32Exception(Marshal.GetLastPInvokeError(), $"setns({ns})");
    }
}

/// <summary>One request the backend answered: when (Unix ms), from which lb address, with which X-Forwarded-For.</summary>
public sealed record BackendHit(long Ms, string Peer, string? ForwardedFor, string Target);

/// <summary>
/// The app's one backend, a minimal HTTP/1.1 server listening inside the backend namespace (the test process owns
/// the socket). It answers every request with <c>{peer} xff={X-Forwarded-For} target={target}</c>, where peer is
/// the address of the lb node that forwarded it, and closes the connection.
/// </summary>
public sealed class NetnsHttpBackend : IDisposable
{
    readonly Socket listener;
    readonly CancellationTokenSource stop = new();
    public ConcurrentQueue<BackendHit> Hits { get; } = new();

    public NetnsHttpBackend(string ns, int port)
    {
        listener = Netns.Run(ns, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            s.Bind(new IPEndPoint(IPAddress.Any, port));
            s.Listen(512);
            return s;
        });
        _ = Task.Run(AcceptLoop);
    }

    async Task AcceptLoop()
    {
        for (int i = 0; i < 10_000_000 && !stop.IsCancellationRequested; i++)
        {
            Socket s;
            try { s = await listener.AcceptAsync(stop.Token); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException) { return; }
            _ = Task.Run(() => Answer(s));
        }
    }

    async Task Answer(Socket s)
    {
        using (s)
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop.Token))
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(15));
            try
            {
                var head = await ReadHead(s, timeout.Token);
                if (head is null) return;
                var lines = head.Split("\r\n");
                var target = lines[0].Split(' ') is { Length: >= 2 } parts ? parts[1] : "";
                var xff = lines.Skip(1).Select(l => l.Split(':', 2))
                    .FirstOrDefault(kv => kv.Length == 2 && kv[0].Trim().Equals("X-Forwarded-For", StringComparison.OrdinalIgnoreCase))?[1].Trim();
                var peer = ((IPEndPoint)s.RemoteEndPoint!).Address.ToString();
                Hits.Enqueue(new BackendHit(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), peer, xff, target));
                // "/slow?ms=M&bytes=B": answer after M ms with B bytes of padding (a long response in flight).
                var slow = System.Text.RegularExpressions.Regex.Match(target, @"/slow\?ms=(\d+)&bytes=(\d+)");
                if (slow.Success) await Task.Delay(int.Parse(slow.Groups[1].Value), timeout.Token);
                var padding = slow.Success ? new string('x', int.Parse(slow.Groups[2].Value)) : "";
                var body = Encoding.ASCII.GetBytes($"{peer} xff={xff ?? "-"} target={target}\n{padding}");
                var response = Encoding.ASCII.GetBytes(
                    $"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
                await s.SendAsync(response.Concat(body).ToArray(), SocketFlags.None, timeout.Token);
                s.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
        }
    }

    /// <summary>The request line and headers (no body: lb forwards GETs here), or null if the peer closed first.</summary>
    static async Task<string?> ReadHead(Socket s, CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        int used = 0;
        while (used < buffer.Length)
        {
            int n = await s.ReceiveAsync(buffer.AsMemory(used), SocketFlags.None, ct);
            if (n == 0) return null;
            used += n;
            var text = Encoding.ASCII.GetString(buffer, 0, used);
            int end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0) return text[..end];
        }
        return null;
    }

    public void Dispose()
    {
        stop.Cancel();
        listener.Dispose();
    }
}

/// <summary>What one HTTP request from the client namespace got: status and body, or why it failed.</summary>
public sealed record HttpAnswer(int Status, string Body, string? Failure)
{
    public bool Ok => Failure is null && Status == 200;
    /// <summary>The backend's first word: the address of the lb node that forwarded the request.</summary>
    public string? Via => Ok ? Body.Split(' ', 2)[0].Trim() : null;
}

/// <summary>
/// A bounded HTTP client loop inside the client namespace: one GET per iteration on a new connection
/// (<c>Connection: close</c>, so each request goes wherever the VIP is now), timing out after
/// <see cref="Timeout"/>. Every result becomes a <see cref="Probe"/> named after the lb node that forwarded it.
/// </summary>
public sealed class NetnsHttpClient(string ns, IReadOnlyDictionary<string, string> nodeNames)
{
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(1);
    public ConcurrentQueue<Probe> Probes { get; } = new();
    /// <summary>Failed loop requests: when they finished (Unix ms), how long they took, and why.</summary>
    public ConcurrentQueue<(long Ms, long TookMs, string Why)> Failures { get; } = new();
    /// <summary>Every loop request: when it finished (Unix ms) and how long it took.</summary>
    public ConcurrentQueue<(long Ms, long TookMs)> Durations { get; } = new();

    /// <summary>One GET, made from the client namespace.</summary>
    public HttpAnswer Get(IPEndPoint target, string path, TimeSpan? timeout = null) =>
        Netns.Run(ns, () => OnceAsync(target, path, timeout).GetAwaiter().GetResult());

    /// <summary>One GET from the client namespace, in the background (a long request across an event).</summary>
    public Task<HttpAnswer> StartGet(IPEndPoint target, string path, TimeSpan timeout)
    {
        HttpAnswer? answer = null;
        return Netns.Start(ns, () => answer = OnceAsync(target, path, timeout).GetAwaiter().GetResult())
            .ContinueWith(t => { t.GetAwaiter().GetResult(); return answer!; }, TaskScheduler.Default);
    }

    /// <summary>
    /// Starts the loop: a request every <paramref name="pause"/> after the previous one finished, for
    /// <paramref name="duration"/> and at most 100 000 requests.
    /// </summary>
    public Task Loop(IPEndPoint target, string path, TimeSpan duration, TimeSpan pause, TimeSpan? timeout = null) => Netns.Start(ns, () =>
    {
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 100_000 && clock.Elapsed < duration; i++)
        {
            var started = clock.ElapsedMilliseconds;
            var answer = OnceAsync(target, path, timeout).GetAwaiter().GetResult();
            var node = answer.Via is { } via ? nodeNames.GetValueOrDefault(via, via) : null;
            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            Durations.Enqueue((now, clock.ElapsedMilliseconds - started));
            if (node is null) Failures.Enqueue((now, clock.ElapsedMilliseconds - started, answer.Failure ?? $"status {answer.Status}"));
            Probes.Enqueue(new Probe(now, node, node is null ? answer.Failure ?? $"status {answer.Status}" : null));
            Thread.Sleep(pause);
        }
    });

    /// <summary>
    /// One exchange, given up after its timeout even when the socket has not yet honoured the cancellation: on Linux a
    /// cancelled connect whose SYN went unanswered was seen to end only ~0.7–0.95 s later (at the SYN retransmit),
    /// which made a 250 ms client hide the moment the new master answered. The abandoned exchange ends on its own.
    /// </summary>
    async Task<HttpAnswer> OnceAsync(IPEndPoint target, string path, TimeSpan? timeout = null)
    {
        var limit = timeout ?? Timeout;
        var exchange = ExchangeAsync(target, path, limit);
        try
        {
            return await exchange.WaitAsync(limit + TimeSpan.FromMilliseconds(20));
        }
        catch (TimeoutException)
        {
            _ = exchange.ContinueWith(t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
            return new HttpAnswer(0, "", "timeout");
        }
    }

    // Called on a thread inside the namespace: the socket is created there, before the first await.
    async Task<HttpAnswer> ExchangeAsync(IPEndPoint target, string path, TimeSpan timeout)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await s.ConnectAsync(target, cts.Token);
            var request = Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: vrrp-lab\r\nConnection: close\r\n\r\n");
            await s.SendAsync(request, SocketFlags.None, cts.Token);
            // Like curl: the response ends after Content-Length bytes of body (or at EOF without one).
            var received = new MemoryStream();
            var buffer = new byte[64 * 1024];
            int bodyStart = -1;
            long? length = null;
            for (int i = 0; i < 100_000 && received.Length < 16 << 20; i++)
            {
                int n = await s.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0) break;
                received.Write(buffer, 0, n);
                if (bodyStart < 0 && HeadEnd(received) is { } end)
                {
                    bodyStart = end;
                    length = ContentLength(Encoding.ASCII.GetString(received.GetBuffer(), 0, end));
                }
                if (bodyStart >= 0 && length is { } l && received.Length - bodyStart >= l) break;
            }
            if (bodyStart < 0) return new HttpAnswer(0, "", $"no response head ({received.Length} bytes)");
            var head = Encoding.ASCII.GetString(received.GetBuffer(), 0, bodyStart);
            var body = Encoding.ASCII.GetString(received.GetBuffer(), bodyStart, (int)received.Length - bodyStart);
            var status = head.Split(' ', 3) is { Length: >= 2 } parts && int.TryParse(parts[1], out var code) ? code : 0;
            if (length is { } expected && body.Length < expected)
                return new HttpAnswer(status, body, $"truncated body: {body.Length} of {expected} bytes");
            return new HttpAnswer(status, body, status == 200 ? null : $"status {status}");
        }
        catch (OperationCanceledException) { return new HttpAnswer(0, "", "timeout"); }
        catch (SocketException e) { return new HttpAnswer(0, "", e.SocketErrorCode.ToString()); }
    }

    /// <summary>Offset of the body (just past CRLFCRLF), or null while the head is incomplete.</summary>
    static int? HeadEnd(MemoryStream received)
    {
        var bytes = received.GetBuffer().AsSpan(0, (int)received.Length);
        int i = bytes.IndexOf("\r\n\r\n"u8);
        return i < 0 ? null : i + 4;
    }

    static long? ContentLength(string head) => head.Split("\r\n").Skip(1)
        .Select(l => l.Split(':', 2))
        .Where(kv => kv.Length == 2 && kv[0].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
        .Select(kv => long.TryParse(kv[1].Trim(), out var v) ? v : (long?)null)
        .FirstOrDefault();
}

/// <summary>
/// Two whole `lb run` processes in a <see cref="Lab"/>: lb1 (192.0.2.11) and lb2 (192.0.2.12) with a generated TOML
/// config each, a client (192.0.2.1) and the app's backend (192.0.2.20:9000), all on one bridge. Dispose kills the lb
/// processes it started (by PID), stops the backend and lets the lab delete the namespaces, even when a test failed.
/// </summary>
public sealed class LbProcessLab : IDisposable
{
    public const string Lb1Ip = "192.0.2.11", Lb2Ip = "192.0.2.12", ClientIp = "192.0.2.1", BackendIp = "192.0.2.20";
    public const int Port = 8080, BackendPort = 9000;
    public static readonly IPEndPoint VipEndpoint = new(IPAddress.Parse(Lab.Vip), Port);
    public static readonly IReadOnlyDictionary<string, string> NodeNames = new Dictionary<string, string> { [Lb1Ip] = "lb1", [Lb2Ip] = "lb2" };

    readonly ITestOutputHelper output;
    readonly List<LabProcess> processes = [];
    public Lab Lab { get; }
    public string N1 { get; }
    public string N2 { get; }
    public string ClientNs { get; }
    public NetnsHttpBackend Backend { get; }
    public NetnsHttpClient Client { get; }

    public LbProcessLab(ITestOutputHelper output)
    {
        this.output = output;
        Lab = new Lab(output);
        try
        {
            N1 = Lab.AddHost("n1", Lb1Ip);
            N2 = Lab.AddHost("n2", Lb2Ip);
            ClientNs = Lab.AddHost("c", ClientIp);
            var backendNs = Lab.AddHost("be", BackendIp);
            Backend = new NetnsHttpBackend(backendNs, BackendPort);
            Client = new NetnsHttpClient(ClientNs, NodeNames);
        }
        catch
        {
            Lab.Dispose();
            throw;
        }
    }

    public string NsOf(string node) => node == "lb1" ? N1 : N2;

    /// <summary>
    /// lb.dll in src/Host.cs's own output folder (built first by the ProjectReference; the path is recorded at build
    /// time in this assembly's metadata), or LB_DLL when set (a lb.dll, or a NativeAOT lb: see <see cref="LbCommand"/>).
    /// </summary>
    public static string LbDll =>
        Environment.GetEnvironmentVariable("LB_DLL") is { Length: > 0 } dll ? dll
        : System.Reflection.CustomAttributeExtensions.GetCustomAttributes<System.Reflection.AssemblyMetadataAttribute>(typeof(LbProcessLab).Assembly)
              .FirstOrDefault(a => a.Key == "LbDll")?.Value
          ?? throw new InvalidOperationException("no LbDll metadata: build tests/Vrrp.Tests with its csproj");
    public static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p ? p : "dotnet";

    /// <summary>
    /// The command line that runs lb with <paramref name="args"/>: `dotnet lb.dll ARGS`, or, when LB_DLL names a
    /// NativeAOT binary (no .dll), that binary itself, so these suites can run against the native build.
    /// </summary>
    public static string[] LbCommand(params string[] args) =>
        LbDll.EndsWith(".dll", StringComparison.Ordinal) ? [Dotnet, LbDll, .. args] : [LbDll, .. args];

    /// <summary>
    /// The config of one node: plain HTTP on *:8080 (TLS ends before lb), app1 → the backend, no access log, and a
    /// [vrrp] section on eth0 as the ha-pair sample (v3, VRID 51, the VIP, track_self).
    /// </summary>
    public static string Config(string node, int priority, int advertMs = 1000, int trackSelfWeight = 2) => $$"""
        # generated by LbProcessFailoverTests
        [node]
        name = "{{node}}"

        [listen]
        http = "*:{{Port}}"
        plain_http = "proxy"

        [log]
        access = "off"

        [apps.app1]
        servers = [ { name = "app1_1", address = "{{BackendIp}}:{{BackendPort}}" } ]

        [vrrp]
        interface = "eth0"
        virtual_router_id = 51
        priority = {{priority}}
        advert_int = "{{(advertMs % 1000 == 0 ? $"{advertMs / 1000}s" : $"{advertMs}ms")}}"
        version = 3
        virtual_ips = ["{{Lab.Vip}}/24"]
        preempt = true
        garp_master_delay = "1s"
        garp_master_repeat = 3
        track_self = { weight = {{trackSelfWeight}} }
        """;

    public string WriteConfig(string node, string text)
    {
        var path = Path.Combine(Lab.Dir, $"{node}.toml");
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>
    /// `ip netns exec NS dotnet lb.dll run -c FILE` (ip execs it: the PID is lb's); waits until it serves. With
    /// <paramref name="asUser"/>, lb runs as that user through setpriv (which execs too) and the config is its own file.
    /// </summary>
    public LabProcess StartLb(string node, string config, string? label = null, Lb.Tests.UnprivilegedLb? asUser = null)
    {
        var path = asUser?.WriteFile($"{node}.toml", config) ?? WriteConfig(node, config);
        if (!File.Exists(LbDll)) throw new FileNotFoundException("lb is not built", LbDll);
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        IEnumerable<string> lb = asUser?.Command(Dotnet, ["run", "-c", path]) ?? LbCommand("run", "-c", path);
        foreach (var a in new[] { "netns", "exec", NsOf(node) }.Concat(lb)) psi.ArgumentList.Add(a);
        var p = new LabProcess(label ?? node, Process.Start(psi)!, output);
        processes.Add(p);
        p.Capture();
        // Started as a user through unshare + setpriv, lb took up to 56 s to print its ready line on the loaded 2-core
        // machine (30 s was missed twice in 8 runs of PrivilegeFailoverTests); as root 30 s has been enough.
        var wait = TimeSpan.FromSeconds(asUser is null ? 30 : 90);
        var ready = p.WaitForLine(l => l.Contains($"config OK: node {node}") || l.StartsWith("lb: cannot start"), wait);
        if (ready is null || ready.StartsWith("lb: cannot start"))
            throw new InvalidOperationException($"{node} did not start: {ready ?? $"no ready line in {wait.TotalSeconds} s"}");
        return p;
    }

    /// <summary>Which lb nodes hold the VIP on their eth0 now.</summary>
    public string VipHolders() => string.Join(",", new[] { ("lb1", N1), ("lb2", N2) }.Where(n => Lab.HasVip(n.Item2)).Select(n => n.Item1));

    /// <summary>Waits (bounded) until exactly <paramref name="node"/> holds the VIP.</summary>
    public bool WaitForSoleMaster(string node, TimeSpan timeout) => Lab.WaitFor(() => VipHolders() == node, timeout);

    /// <summary>
    /// Sends GETs straight to <paramref name="nodeIp"/> until 5 in a row succeed fast (at most 100 tries), so the
    /// first request after a failover does not pay for JIT compilation of the proxy path.
    /// </summary>
    public bool WarmUp(string nodeIp, int port = Port)
    {
        var target = new IPEndPoint(IPAddress.Parse(nodeIp), port);
        int inARow = 0;
        for (int i = 0; i < 100 && inARow < 5; i++)
        {
            var clock = Stopwatch.StartNew();
            var answer = Client.Get(target, "/app1/warm-up");
            inARow = answer.Ok && clock.ElapsedMilliseconds < 100 ? inARow + 1 : 0;
            if (!answer.Ok) Thread.Sleep(100);
        }
        return inARow >= 5;
    }

    public void Dispose()
    {
        foreach (var p in processes)
        {
            try { p.Dispose(); } // SIGKILL by PID, bounded wait
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { output.WriteLine($"cleanup {p.Name}: {e.Message}"); }
        }
        Backend?.Dispose();
        Lab.Dispose();
    }
}

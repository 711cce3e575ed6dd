// VrrpPeer: one lb VRRP node as its own process, for the network-namespace tests.
//   node   --name N --interface IF --vrid ID --priority P --advert-ms MS --version 2|3 --vip A/L [--nopreempt]
//          [--peer IP]... [--auth PASS] [--garp-delay-ms MS] [--listen PORT] [--track-interface IF]...
//          [--track-script CMD --track-weight W --track-rise R --track-fall F --track-interval-ms MS]
//   listen --name N --listen PORT            (a TCP answerer only, beside a keepalived node)
//   client --target IP:PORT --duration-ms MS (bounded probe loop; one line per attempt)
// Every line on stdout starts with the Unix time in ms so the test can line events up across processes.
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Lb.Vrrp;
using Microsoft.Extensions.Logging;

var mode = args.Length > 0 ? args[0] : "";
var opts = Args.Parse(args.Skip(1).ToArray());
return mode switch
{
    "node" => await Node.Run(opts),
    "listen" => await Node.ListenOnly(opts),
    "client" => await Client.Run(opts),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: VrrpPeer node|listen|client --key value ...");
    return 2;
}

static class Out
{
    static readonly object Gate = new();
    public static long Ms => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    public static void Line(string text)
    {
        lock (Gate) Console.Out.WriteLine($"{Ms} {text}");
    }
}

sealed class Args(Dictionary<string, List<string>> values)
{
    public static Args Parse(string[] a)
    {
        var d = new Dictionary<string, List<string>>();
        for (int i = 0; i < a.Length; i++)
        {
            if (!a[i].StartsWith("--")) continue;
            var key = a[i][2..];
            var value = i + 1 < a.Length && !a[i + 1].StartsWith("--") ? a[++i] : "true";
            (d.TryGetValue(key, out var l) ? l : d[key] = []).Add(value);
        }
        return new Args(d);
    }
    public string Get(string key, string fallback = "") => values.TryGetValue(key, out var l) ? l[^1] : fallback;
    public IReadOnlyList<string> All(string key) => values.TryGetValue(key, out var l) ? l : [];
    public bool Has(string key) => values.ContainsKey(key);
}

sealed class LineLogger(string name) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel level) => level >= LogLevel.Information;
    public void Log<TState>(LogLevel level, EventId id, TState state, Exception? e, Func<TState, Exception?, string> format)
    {
        if (IsEnabled(level)) Out.Line($"{name} {level}: {format(state, e)}{(e is null ? "" : " " + e.Message)}");
    }
}

static class Node
{
    public static async Task<int> Run(Args a)
    {
        var name = a.Get("name", "lb");
        var options = new VrrpOptions
        {
            Interface = a.Get("interface", "eth0"),
            VirtualRouterId = byte.Parse(a.Get("vrid", "51")),
            Priority = byte.Parse(a.Get("priority", "100")),
            AdvertInterval = TimeSpan.FromMilliseconds(int.Parse(a.Get("advert-ms", "1000"))),
            Version = a.Get("version", "3") == "2" ? VrrpVersion.V2 : VrrpVersion.V3,
            VirtualIps = a.All("vip").Select(v => VirtualIp.TryParse(v) ?? throw new ArgumentException(v)).ToList(),
            Preempt = !a.Has("nopreempt"),
            UnicastPeers = a.All("peer").Select(IPAddress.Parse).ToList(),
            AuthPassword = a.Has("auth") ? a.Get("auth") : null,
            GarpMasterDelay = TimeSpan.FromMilliseconds(int.Parse(a.Get("garp-delay-ms", "1000"))),
            GarpMasterRepeat = 3,
            TrackInterfaces = a.All("track-interface"),
            TrackScripts = a.All("track-script").Select(cmd => new TrackScript(cmd,
                TimeSpan.FromMilliseconds(int.Parse(a.Get("track-interval-ms", "1000"))), int.Parse(a.Get("track-weight", "0")),
                int.Parse(a.Get("track-rise", "1")), int.Parse(a.Get("track-fall", "1")))).ToList(),
        };
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; done.TrySetResult(); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; done.TrySetResult(); });
        using var listener = Listen(name, a);
        await using var router = new VrrpRouter(options, new LineLogger(name));
        await router.StartAsync(CancellationToken.None);
        await done.Task;
        Out.Line($"{name} stopping (SIGTERM)");
        await router.StopAsync(CancellationToken.None);
        Out.Line($"{name} stopped; drops: {string.Join(", ", router.Drops.Snapshot().Select(kv => $"{kv.Key}={kv.Value}"))}");
        return 0;
    }

    public static async Task<int> ListenOnly(Args a)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; done.TrySetResult(); });
        using var listener = Listen(a.Get("name", "listener"), a);
        await done.Task;
        return 0;
    }

    // A TCP answerer on every address, the VIP included: it writes its node name and closes.
    static TcpListener? Listen(string name, Args a)
    {
        if (!a.Has("listen")) return null;
        var l = new TcpListener(IPAddress.Any, int.Parse(a.Get("listen")));
        l.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        l.Start();
        var reply = System.Text.Encoding.ASCII.GetBytes(name + "\n");
        _ = Task.Run(async () =>
        {
            while (true)
            {
                Socket s;
                try { s = await l.AcceptSocketAsync(); }
                catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
                using (s)
                {
                    try { await s.SendAsync(reply); s.Shutdown(SocketShutdown.Both); }
                    catch (SocketException) { }
                }
            }
        });
        Out.Line($"{name} listening on port {a.Get("listen")}");
        return l;
    }
}

static class Client
{
    // One attempt every ~20 ms: connect with a 250 ms timeout, read the answering node's name.
    public static async Task<int> Run(Args a)
    {
        var target = IPEndPoint.Parse(a.Get("target"));
        var until = Out.Ms + int.Parse(a.Get("duration-ms", "10000"));
        for (int attempt = 0; attempt < 100_000 && Out.Ms < until; attempt++)
        {
            Out.Line(await Probe(target));
            await Task.Delay(20);
        }
        Out.Line("done");
        return 0;
    }

    static async Task<string> Probe(IPEndPoint target)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(250));
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await s.ConnectAsync(target, cts.Token);
            var buf = new byte[64];
            int n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token);
            return n > 0 ? "ok " + System.Text.Encoding.ASCII.GetString(buf, 0, n).Trim() : "fail empty";
        }
        catch (OperationCanceledException) { return "fail timeout"; }
        catch (SocketException e) { return "fail " + e.SocketErrorCode; }
    }
}

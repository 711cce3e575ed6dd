using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Microsoft.FSharp.Core;

namespace Lb.Rules.Bench;

/// <summary>
/// The per-request work lb asks of Rules, one benchmark per function, on the bench config
/// (3 apps x 3 servers, the shape of samples/three-apps.toml). Issue 7's target: a routing decision
/// (<c>Routing.Decide</c> on a compiled Snapshot) in at most 500 ns with at most one allocation.
/// </summary>
[MemoryDiagnoser]
public class RulesBenchmarks
{
    private const string ConfigText = """
        [listen]
        http  = "127.0.0.1:20080"
        plain_http = "proxy"

        [apps.app1]
        servers = [ { name = "app1_1", address = "127.0.0.1:19101" }, { name = "app1_2", address = "127.0.0.1:19102" }, { name = "app1_3", address = "127.0.0.1:19103" } ]
        [apps.app2]
        servers = [ { name = "app2_1", address = "127.0.0.1:19201" }, { name = "app2_2", address = "127.0.0.1:19202" }, { name = "app2_3", address = "127.0.0.1:19203" } ]
        [apps.app3]
        servers = [ { name = "app3_1", address = "127.0.0.1:19301" }, { name = "app3_2", address = "127.0.0.1:19302" }, { name = "app3_3", address = "127.0.0.1:19303" } ]
        """;

    private Snapshot _snapshot = null!;
    private AppConfig _app2 = null!;
    private RequestFacts _forward = null!;
    private RequestFacts _forwardDeep = null!;
    private RequestFacts _slashRedirect = null!;
    private RequestFacts _notFound = null!;
    private ResponseContext _response = null!;
    private RoundRobinState _roundRobin = null!;
    private readonly bool[] _up = [true, true, true];
    private readonly int[] _weights = [1, 1, 1];
    private readonly string[] _cookieHeaders = ["lang=en; SRVID=app2_2; theme=dark"];

    private static RequestFacts Facts(string target) => new(
        isHttps: true, host: "127.0.0.1:20443", method: "GET", rawTarget: target,
        clientAddress: "127.0.0.1", forwardedFor: FSharpOption<string>.None,
        // What a browser-like client sends; Routing reads headers only when a rule needs them.
        headers: [Tuple.Create("Host", "127.0.0.1:20443"), Tuple.Create("User-Agent", "wrk"), Tuple.Create("Cookie", "lang=en; SRVID=app2_2")]);

    [GlobalSetup]
    public void Setup()
    {
        // No [tls]: the decision does not depend on the listener's certificate, only on RequestFacts.IsHttps.
        var load = Rules.LoadConfig(ConfigText, "/nonexistent", _ => true, _ => []);
        if (!load.IsValid)
            throw new InvalidOperationException("bench config: " + string.Join("; ", load.Errors.Select(e => $"{e.Keyword}: {e.Message}")));
        _snapshot = Rules.Compile(load.Config);
        _app2 = load.Config.Apps[1];
        _forward = Facts("/app2/bench");
        _forwardDeep = Facts("/app2/static/css/../img/logo.png?v=3");
        _slashRedirect = Facts("/app2");
        _notFound = Facts("/nope/x");
        _response = ((Decision.Forward)Routing.Decide(_snapshot, _forward)).Item.Response;
        _roundRobin = Balancing.RoundRobinInitial;
    }

    // ---- Routing decision (issue 7 target: <= 500 ns, <= 1 allocation) ---------------------------

    [Benchmark(Description = "Routing.Decide forward /app2/bench")]
    public Decision DecideForward() => Routing.Decide(_snapshot, _forward);

    [Benchmark(Description = "Routing.Decide forward, dot-segments + query")]
    public Decision DecideForwardDeep() => Routing.Decide(_snapshot, _forwardDeep);

    [Benchmark(Description = "Routing.Decide /app2 -> /app2/ redirect")]
    public Decision DecideSlashRedirect() => Routing.Decide(_snapshot, _slashRedirect);

    [Benchmark(Description = "Routing.Decide unknown app -> 404")]
    public Decision DecideNotFound() => Routing.Decide(_snapshot, _notFound);

    // ---- Path normalise / strip ------------------------------------------------------------------

    [Benchmark(Description = "Paths.normalize /app2/bench")]
    public FSharpResult<string, string> Normalize() => Paths.normalize("/app2/bench");

    [Benchmark(Description = "Paths.normalize dot-segments, %2e, //")]
    public FSharpResult<string, string> NormalizeTricky() => Paths.normalize("/app2/a/./b/../%2e%2E/c//d.html");

    [Benchmark(Description = "Paths.stripPrefix /app2 /app2/bench")]
    public FSharpOption<string>? StripPrefix() => Paths.stripPrefix("/app2", "/app2/bench");

    // ---- Response header rewrites ----------------------------------------------------------------

    [Benchmark(Description = "HeaderRewrite.rewriteLocation server URL")]
    public string RewriteLocation() => HeaderRewrite.rewriteLocation(_response, "http://127.0.0.1:19202/welcome?x=1");

    [Benchmark(Description = "HeaderRewrite.rewriteSetCookie Path=/")]
    public string RewriteSetCookie() => HeaderRewrite.rewriteSetCookie("/app2", "sid=abc123; Path=/; HttpOnly");

    // ---- Persistence cookie ----------------------------------------------------------------------

    [Benchmark(Description = "Cookies.Parse 3 pairs")]
    public CookiePair[] CookiesParse() => Cookies.Parse(_cookieHeaders[0]);

    [Benchmark(Description = "Cookies.TryFind SRVID among 3")]
    public FSharpOption<string>? CookiesTryFind() => Cookies.TryFind("SRVID", _cookieHeaders[0]);

    [Benchmark(Description = "Persistence.Decide pinned by cookie")]
    public PersistenceChoice PersistenceDecide() => Persistence.Decide(_app2, _cookieHeaders, _up);

    [Benchmark(Description = "Persistence.BackendCookieHeaders strip SRVID")]
    public string[] BackendCookieHeaders() => Persistence.BackendCookieHeaders(_app2, _cookieHeaders);

    [Benchmark(Description = "Persistence.SetCookieFor (built once per app and config generation)")]
    public string SetCookieFor() => Persistence.SetCookieFor(_app2, 1, true);

    [Benchmark(Description = "Persistence.CacheControlWithPrivate (none from backend)")]
    public string CacheControlWithPrivate() => Persistence.CacheControlWithPrivate([]);

    // ---- Access log (one line per request, written by the background writer) ------------------------

    private readonly System.Buffers.ArrayBufferWriter<byte> _logLine = new(1024);

    private static readonly AccessLogEntry LogEntry = new(
        clientAddress: "127.0.0.1", forwardedFor: "", time: new DateTimeOffset(2026, 11, 27, 13, 55, 36, TimeSpan.Zero),
        method: "GET", target: "/app2/bench", protocol: "HTTP/1.1", status: 200, bytesSent: 1024L, referer: "",
        userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", app: "app2", server: "app2_2",
        queueMs: 0L, connectMs: 0L, responseMs: 1L, totalMs: 1L);

    [Benchmark(Description = "AccessLog.write one line into a reused buffer")]
    public int AccessLogWrite()
    {
        _logLine.ResetWrittenCount();
        AccessLog.Write(_logLine, LogEntry);
        return _logLine.WrittenCount;
    }

    // ---- Balancing -------------------------------------------------------------------------------

    [Benchmark(Description = "Balancing.RoundRobin 3 servers")]
    public int RoundRobin()
    {
        var picked = Balancing.RoundRobin(_roundRobin, _up, _weights)!.Value;
        _roundRobin = picked.Item2;
        return picked.Item1;
    }
}

/// <summary>
/// `allocations`: bytes allocated per routing decision, counted exactly by the runtime over many calls (not
/// sampled, not timed, so a busy machine does not change it), next to the size of one `Decision.Forward`:
/// a decision that allocates no more than that allocates one object (issue 7: at most one allocation).
/// </summary>
public static class AllocationCount
{
    private const int Calls = 100_000;

    public static void Print()
    {
        var bench = new RulesBenchmarks();
        bench.Setup();
        var plan = ((Decision.Forward)bench.DecideForward()).Item;
        var oneObject = BytesPerCall(() => Decision.NewForward(plan));
        Console.WriteLine($"one Decision.Forward object: {oneObject:F0} B");
        foreach (var (name, decide) in new (string, Func<object>)[]
                 {
                     ("Routing.Decide forward /app2/bench", bench.DecideForward),
                     ("Routing.Decide forward, dot-segments + query", bench.DecideForwardDeep),
                     ("Routing.Decide /app2 -> /app2/ redirect", bench.DecideSlashRedirect),
                     ("Routing.Decide unknown app -> 404", bench.DecideNotFound),
                 })
            Console.WriteLine($"{name}: {BytesPerCall(decide):F0} B per call");
    }

    private static double BytesPerCall(Func<object> call)
    {
        for (var i = 0; i < 1000; i++) call(); // tier-up and statics first
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < Calls; i++) call();
        return (GC.GetAllocatedBytesForCurrentThread() - before) / (double)Calls;
    }
}

public static class Program
{
    public static void Main(string[] args)
    {
        if (args is ["allocations"])
            AllocationCount.Print();
        else
            BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}

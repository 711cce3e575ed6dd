using Lb.Host.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// Dot-segment and encoded-slash tricks (RFC 3986 §5.2.4, §6.2.2.2) never make a request cross from one app
/// to another, and never hand a backend a `.` or `..` segment. Each target is written raw on a TLS socket:
/// HttpClient would normalise it before it left the test.
/// </summary>
[Collection(LbSiteCollection.Name)]
public sealed class PathSafetyTests(LbSite site, ITestOutputHelper output)
{
    private const string Rejected = "";

    /// <summary>
    /// The request target as sent; the app its normalised path names and the target that app's server should
    /// see (or <see cref="Rejected"/>: the request must be refused with 400 or 404). A request whose
    /// normalised path names an app may also be refused, but never forwarded anywhere else.
    /// </summary>
    public static TheoryData<string, string, string> Cases => new()
    {
        { "/app1/../app2/x", "app2", "/x" },
        { "/app1/%2e%2e/app2/x", "app2", "/x" },
        { "/app1/%2E%2E/app2/x", "app2", "/x" },
        { "/app1/.%2e/app2/x", "app2", "/x" },
        { "/app1/x/../../app3/y?z=1", "app3", "/y?z=1" },
        { "/../app1/x", "app1", "/x" },
        { "/app1/../../../app2/x", "app2", "/x" },
        { "//app1//x", "app1", "/x" },
        { "/app1/./x", "app1", "/x" },
        { "/app1/x/.", "app1", "/x/" },
        { "/app1/x/..", "app1", "/" },
        { "/%61pp2/x", "app2", "/x" },
        { "/app1/x?../../app2/y", "app1", "/x?../../app2/y" },
        // An encoded slash is not a separator (it stays %2F), so these name no app at all.
        { "/app1%2F..%2Fapp2/x", Rejected, Rejected },
        { "/app1%2f..%2fapp2/x", Rejected, Rejected },
        { "/app1/..", Rejected, Rejected },
        { "/app1/%2e%2e", Rejected, Rejected },
        { "/app1%00/x", Rejected, Rejected },
        { "/app1/%0d%0aX-Injected:%20yes", Rejected, Rejected },
        // An encoded slash by default (`encoded_slashes = "reject"`, Apache `AllowEncodedSlashes Off`): 404, so
        // `..%2F` reaches neither app1's server (which might decode it) nor app2. Other modes: PathSafetyEncodedSlashTests.
        { "/app1/..%2Fapp2/x", Rejected, Rejected },
        { "/app1/%2e%2e%2fapp2/x", Rejected, Rejected },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_path_trick_reaches_only_the_app_its_normalised_path_names(string target, string app, string backendTarget)
    {
        var response = await RawHttp.GetAsync(site.HttpsPort, target, site.Thumbprint);
        output.WriteLine($"{target} -> {response.StatusLine} {(response.Status == 200 ? Echo.Parse(response.Body).Server + " " + Echo.Parse(response.Body).Target : "")}");

        if (app == Rejected)
        {
            Assert.True(response.Status is 400 or 404, $"{target}: expected 400 or 404, got {response.StatusLine}\n{response.Body}");
            return;
        }
        Assert.True(response.Status is 200 or 400 or 404, $"{target}: got {response.StatusLine}\n{response.Body}");
        if (response.Status != 200)
            return;
        var echo = Echo.Parse(response.Body);
        Assert.Equal(app, echo.App);
        Assert.Equal(backendTarget, echo.Target);
        AssertNoDotSegments(echo.Target);
    }

    /// <summary>
    /// RFC 3986 §6.2.2: escapes of unreserved characters decoded, other escapes upper-cased and kept (`%2F` in the
    /// path is refused by default and kept as `%2F` in keep mode: PathSafetyEncodedSlashTests).
    /// </summary>
    [Theory]
    [InlineData("/app1/caf%c3%a9", "/caf%C3%A9")]
    [InlineData("/app1/%7Euser/%41%42", "/~user/AB")]
    [InlineData("/app1/a%20b?c=%20%2f", "/a%20b?c=%20%2f")]
    [InlineData("/app1/a;b=c/d", "/a;b=c/d")]
    public async Task Percent_encoding_reaches_the_backend_in_canonical_form(string target, string backendTarget)
    {
        var response = await RawHttp.GetAsync(site.HttpsPort, target, site.Thumbprint);

        Assert.Equal(200, response.Status);
        var echo = Echo.Parse(response.Body);
        Assert.Equal("app1", echo.App);
        Assert.Equal(backendTarget, echo.Target);
    }

    [Fact]
    public async Task A_backslash_is_never_a_way_into_another_app()
    {
        var response = await RawHttp.GetAsync(site.HttpsPort, @"/app1\..\app2/x", site.Thumbprint);
        output.WriteLine(response.StatusLine + " " + response.Body);

        if (response.Status == 200)
        {
            var echo = Echo.Parse(response.Body);
            Assert.NotEqual("app2", echo.App);
            AssertNoDotSegments(echo.Target);
        }
        else
        {
            Assert.True(response.Status is 400 or 404, response.StatusLine);
        }
    }

    /// <summary>
    /// RFC 9112 §3.2.2: "A server MUST accept the absolute-form in requests"; the Host is then the target's
    /// authority, and the path is routed like any other (here normalised to app2).
    /// </summary>
    [Fact]
    public async Task An_absolute_form_target_is_accepted_and_routed_by_its_normalised_path()
    {
        var response = await RawHttp.GetAsync(site.HttpsPort, $"https://127.0.0.1:{site.HttpsPort}/app1/../app2/x?q=1", site.Thumbprint);
        output.WriteLine(response.StatusLine + " " + response.Body);

        Assert.Equal(200, response.Status);
        var echo = Echo.Parse(response.Body);
        Assert.Equal("app2", echo.App);
        Assert.Equal("/x?q=1", echo.Target);
    }

    /// <summary>No segment of the path is `.` or `..`, literally or with its dots percent-encoded.</summary>
    private static void AssertNoDotSegments(string target)
    {
        var path = target.Split('?')[0];
        foreach (var segment in path.Split('/'))
        {
            var decoded = segment.Replace("%2e", ".", StringComparison.OrdinalIgnoreCase);
            Assert.False(decoded is "." or "..", $"backend saw a dot-segment in {target}");
        }
    }
}

/// <summary>
/// `[defaults] encoded_slashes` on a real lb (issue 22): each mode in front of two recording backends, app1 and
/// app2, sent the targets of the encoded-slash table raw on a TLS socket. What each backend received is the
/// proof: in `reject` (default) no encoded slash reaches a server; in `keep` it arrives encoded but never next to
/// a dot segment; in `decode` it is a separator and the path is resolved before routing. In every mode no server
/// receives a path that decodes to a dot segment, and every target gets exactly what the pure decision
/// (`Routing.Decide`, the table in docs/config.md) says: same status, same server, same backend target.
/// </summary>
public sealed class PathSafetyEncodedSlashTests(ITestOutputHelper output) : IAsyncLifetime
{
    /// <summary>The tricky targets of `PathTests.encodedSlashTargets` (Rules.Tests), as a client sends them.</summary>
    private static readonly string[] Targets =
    [
        "/app1/a%2Fb", "/app1/a%2fb", "/app1/..%2Fapp2/x", "/app1/%2e%2e%2Fapp2/x", "/app1/%2F..%2Fapp2/x",
        "/app1/.%2F", "/app1/x%2F..", "/app1/a%5Cb", "/app1/..%5capp2/x", @"/app1/a\b", @"/app1\..\app2/x",
        "/app1/%2F", "/app1/%2F%2Fx", "/app1/x%252F", "/app1/x%252F..%252Fapp2", "/app1%2F..%2Fapp2/x",
        "/app2%2Fx", "/app1/%2e%2e/app2/x", "/app1/..%2F..%2F..%2Fetc/passwd", "/app1/x?q=%2F..%2F",
    ];

    private RecordingBackend _app1 = null!;
    private RecordingBackend _app2 = null!;

    public async Task InitializeAsync()
    {
        _app1 = await RecordingBackend.StartAsync("app1_1");
        _app2 = await RecordingBackend.StartAsync("app2_1");
    }

    public async Task DisposeAsync()
    {
        await _app1.DisposeAsync();
        await _app2.DisposeAsync();
    }

    private async Task<LbInstance> StartAsync(string? mode) =>
        await LbInstance.StartAsync(
            (mode is null ? "" : $"[defaults]\nencoded_slashes = \"{mode}\"\n") +
            "[log]\naccess = \"off\"\n" +
            $"[apps.app1]\nhealth = {{ enabled = false }}\nservers = [ {{ name = \"app1_1\", address = \"{_app1.Address}\" }} ]\n" +
            $"[apps.app2]\nhealth = {{ enabled = false }}\nservers = [ {{ name = \"app2_1\", address = \"{_app2.Address}\" }} ]\n");

    /// <summary>
    /// Sends one target; returns the status and, when answered 200, which backend received it and as what (the
    /// backend's log grows by exactly one request, on exactly one of the two servers).
    /// </summary>
    private async Task<(int Status, string? App, string? Target)> SendAsync(LbInstance lb, string target)
    {
        int before1 = _app1.Traffic().Count, before2 = _app2.Traffic().Count;
        var response = await RawHttp.GetAsync(lb.HttpsPort, target, lb.Thumbprint);
        var new1 = _app1.Traffic().Skip(before1).ToArray();
        var new2 = _app2.Traffic().Skip(before2).ToArray();
        output.WriteLine($"{target} -> {response.StatusLine} {string.Join(",", new1.Select(s => "app1 " + s.Target))}{string.Join(",", new2.Select(s => "app2 " + s.Target))}");
        if (response.Status != 200)
        {
            Assert.True(response.Status is 400 or 404, $"{target}: {response.StatusLine}");
            Assert.Empty(new1);
            Assert.Empty(new2);
            return (response.Status, null, null);
        }
        Assert.Equal(1, new1.Length + new2.Length);
        var (app, seen) = new1.Length == 1 ? ("app1", new1[0].Target) : ("app2", new2[0].Target);
        AssertNoDecodedDotSegment(seen);
        return (200, app, seen);
    }

    /// <summary>
    /// What the pure decision (`Routing.Decide` on the running lb's snapshot, the one `lb explain` calls) says for
    /// the target: the status, and the app and backend target when forwarded.
    /// </summary>
    private static (int Status, string? App, string? Target) Decided(LbInstance lb, string target)
    {
        var facts = new Lb.Rules.RequestFacts(
            isHttps: true, host: $"127.0.0.1:{lb.HttpsPort}", method: "GET", rawTarget: target, clientAddress: "127.0.0.1",
            forwardedFor: null, headers: []);
        return Lb.Rules.Routing.Decide(lb.State.Snapshot, facts) switch
        {
            Lb.Rules.Decision.Forward f => (200, f.Item.App.Name, f.Item.BackendTarget),
            Lb.Rules.Decision.Reject r => (r.Item.Status, null, null),
            var other => throw new InvalidOperationException($"{target}: {other}"),
        };
    }

    /// <summary>Every target of the table: the real lb does exactly what the pure decision (the table) says.</summary>
    private async Task AssertEveryTargetAsDecidedAsync(LbInstance lb)
    {
        foreach (var target in Targets)
            Assert.Equal(Decided(lb, target), await SendAsync(lb, target));
    }

    /// <summary>No segment of the path, once a backend decodes it (`%2F` and `\` splitting too), is `.` or `..`.</summary>
    private static void AssertNoDecodedDotSegment(string target)
    {
        var decoded = Uri.UnescapeDataString(target.Split('?')[0]);
        foreach (var segment in decoded.Split('/', '\\'))
            Assert.False(segment is "." or "..", $"a backend saw a dot segment in {target}");
    }

    private static bool HoldsEncodedSlash(string path) =>
        path.Contains("%2F", StringComparison.OrdinalIgnoreCase) || path.Contains("%5C", StringComparison.OrdinalIgnoreCase) || path.Contains('\\');

    [Fact]
    public async Task By_default_a_path_with_an_encoded_slash_gets_404_and_reaches_no_server()
    {
        await using var lb = await StartAsync(null);
        Assert.Equal((404, null, null), await SendAsync(lb, "/app1/..%2Fapp2/x"));
        Assert.Equal((404, null, null), await SendAsync(lb, "/app1/a%2fb"));
        Assert.Equal((404, null, null), await SendAsync(lb, "/app1/a%5Cb"));
        Assert.Equal((200, "app1", "/x%252F"), await SendAsync(lb, "/app1/x%252F"));
        Assert.Equal((200, "app1", "/x?q=%2F..%2F"), await SendAsync(lb, "/app1/x?q=%2F..%2F"));
        await AssertEveryTargetAsDecidedAsync(lb);
        foreach (var target in Targets)
        {
            var (status, _, seen) = await SendAsync(lb, target);
            if (HoldsEncodedSlash(target.Split('?')[0]))
                Assert.NotEqual(200, status);
            if (seen is not null)
                Assert.False(HoldsEncodedSlash(seen.Split('?')[0]), $"{target} reached a server as {seen}");
        }
        Lb.Tests.Reliability.Record("requests", "encoded_slashes = reject (default): an encoded slash reaches no server", Targets.Length, 0, 2 * Targets.Length + 5, 0);
    }

    [Fact]
    public async Task In_keep_mode_an_encoded_slash_reaches_the_server_encoded_and_never_next_to_a_dot_segment()
    {
        await using var lb = await StartAsync("keep");
        Assert.Equal((400, null, null), await SendAsync(lb, "/app1/..%2Fapp2/x"));
        Assert.Equal((400, null, null), await SendAsync(lb, "/app1/.%2F"));
        Assert.Equal((400, null, null), await SendAsync(lb, "/app1/%2e%2e/app2/x"));
        Assert.Equal((200, "app1", "/a%2Fb"), await SendAsync(lb, "/app1/a%2fb"));
        Assert.Equal((200, "app1", "/a%5Cb"), await SendAsync(lb, "/app1/a%5Cb"));
        await AssertEveryTargetAsDecidedAsync(lb);
        foreach (var target in Targets)
        {
            var (status, app, _) = await SendAsync(lb, target);
            // Keep never moves a request between apps: what was sent under /app1/ is answered by app1 or refused.
            if (status == 200 && target.StartsWith("/app1/", StringComparison.Ordinal))
                Assert.Equal("app1", app);
        }
        Lb.Tests.Reliability.Record("requests", "encoded_slashes = keep: encoded slash forwarded as data, never next to a dot segment", Targets.Length, 0, 2 * Targets.Length + 5, 0);
    }

    [Fact]
    public async Task In_decode_mode_an_encoded_slash_is_a_separator_and_the_path_is_resolved_before_routing()
    {
        await using var lb = await StartAsync("decode");
        Assert.Equal((200, "app2", "/x"), await SendAsync(lb, "/app1/..%2Fapp2/x"));
        Assert.Equal((200, "app1", "/a/b"), await SendAsync(lb, "/app1/a%2fb"));
        Assert.Equal((200, "app1", "/a/b"), await SendAsync(lb, "/app1/a%5Cb"));
        Assert.Equal((404, null, null), await SendAsync(lb, "/app1/..%2F..%2F..%2Fetc/passwd"));
        await AssertEveryTargetAsDecidedAsync(lb);
        foreach (var target in Targets)
        {
            var (_, _, seen) = await SendAsync(lb, target);
            if (seen is not null)
                Assert.False(HoldsEncodedSlash(seen.Split('?')[0]), $"{target} reached a server as {seen}");
        }
        Lb.Tests.Reliability.Record("requests", "encoded_slashes = decode: decoded, resolved, routed; no dot segment reaches a server", Targets.Length, 0, 2 * Targets.Length + 4, 0);
    }
}

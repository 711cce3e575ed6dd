using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Lb.Host.Demo;
using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// HAProxy's `cookie SRVID insert indirect nocache` end to end (issue 3, Persistence): the cookie inserted on
/// a client's first response, honoured wherever it sits among hostile cookies, never shown to the backend,
/// and replaced when forged or another app's. The client carries the cookie by hand, as a browser would.
/// </summary>
public sealed class PersistenceTests : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _backends = [];
    private RecordingBackend _app4A = null!;
    private LbInstance _lb = null!;

    public async Task InitializeAsync()
    {
        // No health checks: under a loaded test run a check may time out and take a server down, and
        // persistence to a down server is HealthTests' subject.
        var config = new StringBuilder("[health]\nenabled = false\n");
        foreach (var (app, count, extra) in new[] { ("app1", 3, ""), ("app2", 2, ""), ("app3", 2, "persistence = { mode = \"opaque\" }\n") })
        {
            config.Append($"[apps.{app}]\n{extra}servers = [\n");
            for (var i = 1; i <= count; i++)
            {
                var backend = await EchoBackend.StartAsync($"{app}_{i}");
                _backends.Add(backend);
                config.Append($"  {{ name = \"{backend.Name}\", address = \"{backend.Address}\" }},\n");
            }
            config.Append("]\n");
        }
        _app4A = await RecordingBackend.StartAsync("app4_a");
        var app4B = await RecordingBackend.StartAsync("app4_b");
        _backends.Add(_app4A);
        _backends.Add(app4B);
        config.Append($$"""
            [apps.app4]
            persistence = { cookie = "LBSTICKY" }
            servers = [
              { name = "app4_a", address = "{{_app4A.Address}}", cookie = "s1" },
              { name = "app4_b", address = "{{app4B.Address}}", cookie = "s2" },
            ]
            """);
        var drained = await EchoBackend.StartAsync("app5_drained");
        var active = await EchoBackend.StartAsync("app5_active");
        _backends.Add(drained);
        _backends.Add(active);
        config.Append($$"""

            [apps.app5]
            servers = [
              { name = "app5_drained", address = "{{drained.Address}}", weight = 0 },
              { name = "app5_active", address = "{{active.Address}}" },
            ]
            """);
        foreach (var (app, persistence) in new[] { ("app6", "{ cookie = \"\" }"), ("app7", "{ move_first = true }") })
        {
            var only = await EchoBackend.StartAsync($"{app}_1");
            _backends.Add(only);
            config.Append($"\n[apps.{app}]\npersistence = {persistence}\nservers = [ {{ name = \"{only.Name}\", address = \"{only.Address}\" }} ]\n");
        }
        _lb = await LbInstance.StartAsync(config.ToString());
    }

    private static readonly Regex InsertedCookie =
        new(@"^SRVID=(?<value>app1_[123]); Path=/app1/; HttpOnly; Secure; SameSite=Lax$");

    [Fact]
    public async Task The_first_response_inserts_an_app_scoped_HttpOnly_Secure_cookie_and_Cache_Control_private()
    {
        var first = await _lb.GetAsync("/app1/x");

        Assert.Equal(200, first.Status);
        var line = Assert.Single(first.SetCookies);
        var match = InsertedCookie.Match(line);
        Assert.True(match.Success, line);
        Assert.Equal(first.Echo.Server, match.Groups["value"].Value);
        Assert.NotNull(first.CacheControl);
        Assert.Contains("private", first.CacheControl!.Split(',').Select(d => d.Trim()));
    }

    [Fact]
    public async Task A_client_carrying_its_cookie_reaches_the_same_server_across_100_requests_and_gets_no_new_cookie()
    {
        var first = await _lb.GetAsync("/app1/start");
        var value = first.NewCookie()!;
        Assert.Equal(first.Echo.Server, value);

        var servers = new List<string>();
        var newCookies = 0;
        for (var i = 0; i < 100; i++)
        {
            var reply = await _lb.GetAsync($"/app1/page?i={i}", $"SRVID={value}");
            Assert.Equal(200, reply.Status);
            servers.Add(reply.Echo.Server);
            newCookies += reply.SetCookies.Count;
        }

        Assert.All(servers, s => Assert.Equal(value, s));
        Assert.Equal(0, newCookies);
    }

    [Fact]
    public async Task Clients_without_a_cookie_are_balanced_and_each_gets_the_cookie_of_its_server()
    {
        var seen = new Dictionary<string, string>();
        for (var i = 0; i < 6; i++)
        {
            var reply = await _lb.GetAsync("/app1/fresh");
            seen[reply.Echo.Server] = reply.NewCookie()!;
        }

        Assert.Equal(3, seen.Count);
        Assert.All(seen, pair => Assert.Equal(pair.Key, pair.Value));
    }

    [Fact]
    public async Task The_backend_never_sees_the_persistence_cookie_and_gets_the_others_intact_in_order()
    {
        var reply = await _lb.GetAsync("/app1/x", "a=1; SRVID=app1_2; b=\"two words\"; c=d=e");

        Assert.Equal("app1_2", reply.Echo.Server);
        Assert.Equal("a=1; b=\"two words\"; c=d=e", reply.Echo.Header("Cookie"));
    }

    [Fact]
    public async Task A_cookie_header_holding_only_the_persistence_cookie_is_dropped()
    {
        var reply = await _lb.GetAsync("/app1/x", "SRVID=app1_2");

        Assert.Equal("app1_2", reply.Echo.Server);
        Assert.Null(reply.Echo.Header("Cookie"));
    }

    /// <summary>
    /// Decoys that broke HAProxy before 1.3.23 and naive parsers: `=` inside values, quotes, commas (one
    /// holding a SRVID for another server), spaces, names that contain or differ in case from SRVID,
    /// a nameless and an empty cookie.
    /// </summary>
    private static readonly string[] Hostile =
    [
        "eq=a=b==c",
        "q=\"quoted, value\"",
        "comma=x,SRVID=app1_1,y",
        "sp=with some spaces",
        "SRVIDX=app1_1",
        "XSRVID=app1_2",
        "srvid=app1_1",
        "nameless",
        "=emptyname",
        "empty=",
    ];

    /// <summary>The same decoys with non-ASCII names and values, as UTF-8 (what browsers send).</summary>
    private static readonly string[] HostileNonAscii = [.. Hostile, "uni=ü€ñ", "名前=値"];

    public static TheoryData<string> Positions => new() { "first", "middle", "last" };

    [Theory]
    [MemberData(nameof(Positions))]
    public Task The_cookie_among_hostile_cookies_is_honoured_at_any_position_and_removed_from_the_rest(string position) =>
        HonouredAmongAsync(Hostile, position);

    // Once 502 "Request headers must contain only ASCII characters" (fixed in 1f4cf0b: header bytes round-trip
    // as UTF-8 through Kestrel and the backend client).
    [Theory]
    [MemberData(nameof(Positions))]
    public Task The_cookie_among_non_ASCII_cookies_is_honoured_at_any_position_and_the_rest_reach_the_backend(string position) =>
        HonouredAmongAsync(HostileNonAscii, position);

    private async Task HonouredAmongAsync(string[] decoys, string position)
    {
        var others = decoys.ToList();
        var at = position switch { "first" => 0, "middle" => others.Count / 2, _ => others.Count };
        var cookies = others.ToList();
        cookies.Insert(at, "SRVID=app1_3");
        using var client = Utf8Client();

        for (var i = 0; i < 5; i++)
        {
            var reply = await LbInstance.SendAsync(client, new HttpRequestMessage(HttpMethod.Get, _lb.Https($"/app1/h?i={i}")),
                string.Join("; ", cookies));

            Assert.True(reply.Status == 200, $"{reply.Status}: {reply.Body}");
            Assert.Equal("app1_3", reply.Echo.Server);
            Assert.Empty(reply.SetCookies);
            Assert.Equal(string.Join("; ", others), reply.Echo.Header("Cookie"));
        }
    }

    [Fact]
    public async Task A_stale_persistence_cookie_before_the_valid_one_does_not_hide_it()
    {
        var reply = await _lb.GetAsync("/app1/x", "SRVID=gone; a=b; SRVID=app1_3");

        Assert.Equal("app1_3", reply.Echo.Server);
        Assert.Empty(reply.SetCookies);
        Assert.Equal("a=b", reply.Echo.Header("Cookie"));
    }

    [Theory]
    [InlineData("SRVID=app1_9")]           // forged: no such server
    [InlineData("SRVID=app2_1")]           // another app's server
    [InlineData("SRVID=")]                 // empty
    [InlineData("SRVID=APP1_1")]           // values are case-sensitive
    [InlineData("SRVID=app1_1x; k=v")]     // a prefix of a valid value
    public async Task A_forged_or_other_app_value_gets_a_new_cookie_for_a_server_of_this_app(string cookie)
    {
        var reply = await _lb.GetAsync("/app1/x", cookie);

        Assert.Equal(200, reply.Status);
        Assert.Equal("app1", reply.Echo.App);
        var line = Assert.Single(reply.SetCookies);
        var match = InsertedCookie.Match(line);
        Assert.True(match.Success, line);
        Assert.Equal(reply.Echo.Server, match.Groups["value"].Value);
        Assert.Contains("private", reply.CacheControl ?? "");
        Assert.DoesNotContain("SRVID", reply.Echo.Header("Cookie") ?? "");
    }

    [Fact]
    public async Task Opaque_mode_hides_server_names_and_still_pins()
    {
        var values = new Dictionary<string, string>();
        for (var i = 0; i < 4; i++)
        {
            var reply = await _lb.GetAsync("/app3/x");
            var line = reply.SetCookieLine()!;
            Assert.Matches(@"^SRVID=[A-Za-z0-9_-]{16}; Path=/app3/; HttpOnly; Secure; SameSite=Lax$", line);
            values[reply.Echo.Server] = reply.NewCookie()!;
        }

        Assert.Equal(2, values.Count);
        Assert.NotEqual(values["app3_1"], values["app3_2"]);
        foreach (var (server, value) in values)
        {
            Assert.DoesNotContain("app3", value);
            Assert.DoesNotContain("127.0.0.1", value);
            for (var i = 0; i < 10; i++)
            {
                var pinned = await _lb.GetAsync("/app3/again", $"SRVID={value}");
                Assert.Equal(server, pinned.Echo.Server);
                Assert.Empty(pinned.SetCookies);
            }
        }
        // A named value is not a valid opaque one, even for a server that exists.
        var named = await _lb.GetAsync("/app3/x", "SRVID=app3_1");
        Assert.NotNull(named.NewCookie());
        Assert.DoesNotContain("app3", named.NewCookie()!);
    }

    [Fact]
    public async Task An_opaque_value_of_one_app_is_not_honoured_by_another()
    {
        var opaque = (await _lb.GetAsync("/app3/x")).NewCookie()!;

        var reply = await _lb.GetAsync("/app1/x", $"SRVID={opaque}");

        Assert.Matches(InsertedCookie, reply.SetCookieLine() ?? "");
    }

    [Fact]
    public async Task Each_app_scopes_its_cookie_to_its_own_path()
    {
        var app1 = await _lb.GetAsync("/app1/x");
        var app2 = await _lb.GetAsync("/app2/x");

        Assert.Contains("; Path=/app1/;", app1.SetCookieLine());
        Assert.Contains("; Path=/app2/;", app2.SetCookieLine());
        Assert.Matches("^SRVID=app2_[12];", app2.SetCookieLine());
    }

    [Fact]
    public async Task A_custom_cookie_name_and_server_values_are_used_and_Cache_Control_is_merged_with_the_backends()
    {
        var first = await _lb.GetAsync("/app4/x?cache-control=" + Uri.EscapeDataString("public, max-age=60"));

        var line = Assert.Single(first.SetCookies);
        Assert.Matches(@"^LBSTICKY=s[12]; Path=/app4/; HttpOnly; Secure; SameSite=Lax$", line);
        var directives = first.CacheControl!.Split(',').Select(d => d.Trim()).ToArray();
        Assert.Contains("private", directives);
        Assert.Contains("max-age=60", directives);
        Assert.DoesNotContain("public", directives);
        Assert.Single(directives, "private");

        var value = first.NewCookie("LBSTICKY")!;
        var server = value == "s1" ? "app4_a" : "app4_b";
        Assert.Equal(server, first.Echo.Server);
        var pinned = await _lb.GetAsync("/app4/y?cache-control=" + Uri.EscapeDataString("public, max-age=60"),
            $"SRVID=app4_a; LBSTICKY={value}");
        Assert.Equal(server, pinned.Echo.Server);
        Assert.Empty(pinned.SetCookies);
        // The backend's own caching is left alone when no cookie is inserted; SRVID is just another cookie here.
        Assert.Equal("public, max-age=60", pinned.CacheControl);
        Assert.Equal("SRVID=app4_a", pinned.Echo.Header("Cookie"));
    }

    [Fact]
    public async Task Over_plain_http_the_cookie_is_not_marked_Secure()
    {
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false, UseCookies = false, AllowAutoRedirect = false });

        var reply = await LbInstance.SendAsync(client, new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_lb.HttpPort}/app1/x"));

        Assert.Matches(@"^SRVID=app1_[123]; Path=/app1/; HttpOnly; SameSite=Lax$", reply.SetCookieLine() ?? "");
    }

    [Fact]
    public async Task A_server_drained_with_weight_0_takes_no_new_client_but_keeps_its_pinned_ones()
    {
        for (var i = 0; i < 4; i++)
            Assert.Equal("app5_active", (await _lb.GetAsync("/app5/x")).Echo.Server);

        var pinned = await _lb.GetAsync("/app5/x", "SRVID=app5_drained");

        Assert.Equal("app5_drained", pinned.Echo.Server);
        Assert.Empty(pinned.SetCookies);
    }

    [Fact]
    public async Task Over_http2_the_cookie_is_honoured_and_removed_too()
    {
        using var client = PinnedTls.Client(_lb.Thumbprint, HttpVersion.Version20);

        var reply = await LbInstance.SendAsync(client, new HttpRequestMessage(HttpMethod.Get, _lb.Https("/app1/h2")),
            "a=1; SRVID=app1_2; b=2");

        Assert.Equal("app1_2", reply.Echo.Server);
        Assert.Equal("a=1; b=2", reply.Echo.Header("Cookie"));
        Assert.Empty(reply.SetCookies);
    }

    [Fact]
    public async Task With_persistence_off_no_cookie_is_set_and_the_Cookie_header_passes_unchanged()
    {
        var reply = await _lb.GetAsync("/app6/x", "a=1; SRVID=app6_1; b=2");

        Assert.Equal("app6_1", reply.Echo.Server);
        Assert.Empty(reply.SetCookies);
        Assert.Equal("a=1; SRVID=app6_1; b=2", reply.Echo.Header("Cookie"));
        Assert.DoesNotContain("private", reply.CacheControl ?? "");
    }

    [Fact]
    public async Task With_move_first_the_backend_gets_the_persistence_cookie_first_as_the_seeds_workaround_did()
    {
        var reply = await _lb.GetAsync("/app7/x", "a=1; b=\"x,y\"; SRVID=app7_1; c=d=e");

        Assert.Equal("app7_1", reply.Echo.Server);
        Assert.Empty(reply.SetCookies);
        Assert.Equal("SRVID=app7_1; a=1; b=\"x,y\"; c=d=e", reply.Echo.Header("Cookie"));
    }

    [Fact]
    public async Task The_backends_own_Set_Cookie_comes_through_rewritten_next_to_the_inserted_one()
    {
        var reply = await _lb.GetAsync("/app1/cookie");

        Assert.Equal(2, reply.SetCookies.Count);
        Assert.Contains("a=b; Path=/app1/", reply.SetCookies);
        Assert.Matches(InsertedCookie, reply.SetCookieLine()!);
    }

    /// <summary>A client that sends header values as UTF-8, as browsers send non-ASCII cookie values.</summary>
    private HttpClient Utf8Client() => new(new SocketsHttpHandler
    {
        UseProxy = false,
        UseCookies = false,
        AllowAutoRedirect = false,
        RequestHeaderEncodingSelector = (_, _) => Encoding.UTF8,
        SslOptions = { RemoteCertificateValidationCallback = PinnedTls.Accept(_lb.Thumbprint) },
    })
    { Timeout = TimeSpan.FromSeconds(20) };

    public async Task DisposeAsync()
    {
        if (_lb is not null)
            await _lb.DisposeAsync();
        foreach (var backend in _backends)
            await backend.DisposeAsync();
    }
}

using System.Net;
using System.Text.Json;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>The stats listener over HTTP: authentication, the page's data as JSON and CSV, admin actions.</summary>
public sealed class StatsEndpointTests : IAsyncLifetime
{
    private StatsSite _site = null!;

    public async Task InitializeAsync() => _site = await StatsSite.StartAsync();

    public async Task DisposeAsync() => await _site.DisposeAsync();

    private static readonly string[] AllServers = ["app1/app1_1", "app1/app1_2", "app1/app1_3", "app2/app2_1", "app2/app2_2"];

    [Fact]
    public async Task Healthz_answers_without_credentials_and_nothing_else_does()
    {
        using var anonymous = new HttpClient { BaseAddress = new Uri(_site.StatsUrl) };

        var health = await anonymous.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("ok stats-node\n", await health.Content.ReadAsStringAsync());

        foreach (var path in new[] { "/", "/stats.json", "/stats.csv", "/metrics", "/nothing" })
        {
            var response = await anonymous.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            var challenge = Assert.Single(response.Headers.WwwAuthenticate);
            Assert.Equal("Basic", challenge.Scheme);
            Assert.Contains($"realm=\"{StatsSite.Realm}\"", challenge.Parameter);
        }
        var post = await anonymous.PostAsync("/admin", new FormUrlEncodedContent(new Dictionary<string, string> { ["action"] = "maint" }));
        Assert.Equal(HttpStatusCode.Unauthorized, post.StatusCode);
    }

    [Theory]
    [InlineData(StatsSite.User, "admin")]
    [InlineData("admin", StatsSite.Password)]
    [InlineData(StatsSite.User, "")]
    public async Task Wrong_credentials_get_401(string user, string password)
    {
        using var client = new HttpClient { BaseAddress = new Uri(_site.StatsUrl) };
        client.DefaultRequestHeaders.Authorization = StatsSite.BasicHeader(user, password);

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/")).StatusCode);
    }

    [Fact]
    public async Task The_page_JSON_and_CSV_list_every_server_with_its_state()
    {
        var page = await _site.Stats.GetAsync("/");
        var html = await page.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("DENY", page.Headers.GetValues("X-Frame-Options"));
        Assert.Contains("<meta http-equiv=\"refresh\" content=\"1\">", html);
        Assert.Contains("data-node=\"stats-node\"", html);
        Assert.Contains("data-vrrp=\"n/a\"", html);
        foreach (var server in AllServers)
            Assert.Contains($"<tr class=\"UP\" data-server=\"{server}\"", html);

        using var json = JsonDocument.Parse(await _site.Stats.GetStringAsync("/stats.json"));
        var listed = json.RootElement.GetProperty("apps").EnumerateArray()
            .SelectMany(a => a.GetProperty("servers").EnumerateArray().Select(s => $"{a.GetProperty("name").GetString()}/{s.GetProperty("name").GetString()}"));
        Assert.Equal(AllServers, listed.ToArray());

        var csv = (await _site.Stats.GetStringAsync("/stats.csv")).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("node,app,server,address,status,", csv[0]);
        Assert.Equal(AllServers, csv.Skip(1).Select(line => string.Join('/', line.Split(',')[1..3])).ToArray());
    }

    [Fact]
    public async Task Drain_keeps_pinned_clients_and_takes_no_new_ones_then_ready_takes_them_again()
    {
        var first = await _site.GetAsync("/app1/x");
        var pinnedTo = first.Echo.Server;
        Assert.NotNull(first.NewCookie);

        var drained = await _site.AdminAsync("app1", pinnedTo, "drain");
        Assert.Equal(HttpStatusCode.SeeOther, drained.StatusCode);
        Assert.Contains($"<tr class=\"DRAIN\" data-server=\"app1/{pinnedTo}\"", await _site.Stats.GetStringAsync("/"));

        for (var i = 0; i < 12; i++)
        {
            Assert.NotEqual(pinnedTo, (await _site.GetAsync("/app1/new")).Echo.Server);
            var pinned = await _site.GetAsync("/app1/again", first.NewCookie);
            Assert.Equal(pinnedTo, pinned.Echo.Server);
            Assert.Null(pinned.NewCookie);
        }
        using (var json = JsonDocument.Parse(await _site.Stats.GetStringAsync("/stats.json")))
        {
            var server = json.RootElement.GetProperty("apps")[0].GetProperty("servers").EnumerateArray()
                .Single(s => s.GetProperty("name").GetString() == pinnedTo);
            Assert.Equal("DRAIN", server.GetProperty("status").GetString());
            Assert.Equal(1, server.GetProperty("pinned_clients").GetInt32());
            Assert.Equal(12, server.GetProperty("persistence_hits").GetInt64());
        }

        Assert.Equal(HttpStatusCode.SeeOther, (await _site.AdminAsync("app1", pinnedTo, "ready")).StatusCode);
        var seen = new HashSet<string>();
        for (var i = 0; i < 6; i++)
            seen.Add((await _site.GetAsync("/app1/new")).Echo.Server);
        Assert.Contains(pinnedTo, seen);
    }

    [Fact]
    public async Task Maint_redispatches_pinned_clients_at_once_with_a_new_cookie()
    {
        var first = await _site.GetAsync("/app2/x");
        var pinnedTo = first.Echo.Server;

        Assert.Equal(HttpStatusCode.SeeOther, (await _site.AdminAsync("app2", pinnedTo, "maint")).StatusCode);

        var next = await _site.GetAsync("/app2/x", first.NewCookie);
        Assert.NotEqual(pinnedTo, next.Echo.Server);
        Assert.NotNull(next.NewCookie);
        Assert.NotEqual(first.NewCookie, next.NewCookie);
        Assert.Equal(1, _site.State.Apps[1].Servers.Single(s => s.Name == pinnedTo).Counters.Redispatches);
        Assert.Equal("MAINT", _site.State.Apps[1].Servers.Single(s => s.Name == pinnedTo).Status.ToString());
    }

    [Fact]
    public async Task A_drain_deadline_redispatches_pinned_clients_once_it_passes()
    {
        var first = await _site.GetAsync("/app1/x");
        var pinnedTo = first.Echo.Server;

        Assert.Equal(HttpStatusCode.SeeOther, (await _site.AdminAsync("app1", pinnedTo, "drain", drainSeconds: "2")).StatusCode);
        Assert.Equal(pinnedTo, (await _site.GetAsync("/app1/x", first.NewCookie)).Echo.Server);

        await Task.Delay(TimeSpan.FromSeconds(2.2));
        var after = await _site.GetAsync("/app1/x", first.NewCookie);
        Assert.NotEqual(pinnedTo, after.Echo.Server);
        Assert.NotNull(after.NewCookie);
    }

    [Fact]
    public async Task Admin_posts_without_the_token_or_from_another_origin_are_refused()
    {
        var token = await _site.TokenAsync();

        Assert.Equal(HttpStatusCode.Forbidden, (await _site.AdminAsync("app1", "app1_1", "maint", token: "forged")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await _site.AdminAsync("app1", "app1_1", "maint", token: token, origin: "http://evil.example")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await _site.AdminAsync("app1", "app1_1", "maint", token: token, origin: "null")).StatusCode);
        Assert.Equal("UP", _site.State.Apps[0].Servers[0].Status.ToString());

        Assert.Equal(HttpStatusCode.NotFound, (await _site.AdminAsync("app1", "nope", "maint", token: token)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await _site.AdminAsync("app1", "app1_1", "explode", token: token)).StatusCode);
        Assert.Equal(HttpStatusCode.SeeOther, (await _site.AdminAsync("app1", "app1_1", "maint", token: token)).StatusCode);
        Assert.Equal("MAINT", _site.State.Apps[0].Servers[0].Status.ToString());
        Assert.Contains("app1/app1_1 READY -&gt; MAINT", await _site.Stats.GetStringAsync("/"));
    }

    [Fact]
    public async Task A_stopped_backend_shows_DOWN_with_its_last_check()
    {
        await _site.StopBackendAsync("app2_2");
        var server = _site.State.Apps[1].Servers[1];
        await StatsSite.EventuallyAsync(() => !server.IsUp, TimeSpan.FromSeconds(10), "app2_2 down");
        var other = _site.State.Apps[1].Servers[0];
        await StatsSite.EventuallyAsync(() => other.Counters.LastCheck is not null, TimeSpan.FromSeconds(10), "a check of app2_1");

        using var json = JsonDocument.Parse(await _site.Stats.GetStringAsync("/stats.json"));
        var row = json.RootElement.GetProperty("apps")[1].GetProperty("servers")[1];
        Assert.Equal("DOWN", row.GetProperty("status").GetString());
        Assert.False(row.GetProperty("last_check").GetProperty("passed").GetBoolean());
        Assert.True(row.GetProperty("checks_failed").GetInt64() >= 1);
        var up = json.RootElement.GetProperty("apps")[1].GetProperty("servers")[0];
        Assert.Equal(200, up.GetProperty("last_check").GetProperty("status").GetInt32());
    }
}

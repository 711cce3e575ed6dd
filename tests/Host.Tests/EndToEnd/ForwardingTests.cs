using System.Net;
using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>Requests forwarded to an app: the stripped target, X-Forwarded-*, and the response rewrites.</summary>
[Collection(LbSiteCollection.Name)]
public sealed class ForwardingTests(LbSite site)
{
    [Fact]
    public async Task An_app_request_reaches_a_server_of_that_app_with_the_prefix_stripped()
    {
        var echo = await site.EchoAsync("/app1/anything?q=1");

        Assert.Equal("app1", echo.App);
        Assert.Equal("GET", echo.Method);
        Assert.Equal("/anything?q=1", echo.Target);
    }

    [Fact]
    public async Task A_post_is_forwarded_with_its_method_and_body_length()
    {
        using var content = new StringContent("{\"a\":1}", System.Text.Encoding.UTF8, "application/json");
        var response = await site.Client.PostAsync(site.Https("/app2/form?x=1"), content);
        var echo = Echo.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal("app2", echo.App);
        Assert.Equal("POST", echo.Method);
        Assert.Equal("/form?x=1", echo.Target);
        Assert.Equal("7", echo.Header("Content-Length"));
    }

    [Fact]
    public async Task The_backend_sees_X_Forwarded_headers_set_by_lb()
    {
        var echo = await site.EchoAsync("/app1/anything?q=1");

        Assert.Equal("127.0.0.1", echo.Header("X-Forwarded-For"));
        Assert.Equal("https", echo.Header("X-Forwarded-Proto"));
        Assert.Equal($"127.0.0.1:{site.HttpsPort}", echo.Header("X-Forwarded-Host"));
        Assert.Equal("/app1", echo.Header("X-Forwarded-Prefix"));
    }

    [Fact]
    public async Task A_client_X_Forwarded_For_gets_the_client_address_appended()
    {
        var echo = await site.EchoAsync("/app3/x", ("X-Forwarded-For", "203.0.113.9"));

        Assert.Equal("203.0.113.9, 127.0.0.1", echo.Header("X-Forwarded-For"));
    }

    [Fact]
    public async Task Client_sent_proto_host_and_prefix_are_replaced_not_passed_through()
    {
        var echo = await site.EchoAsync("/app2/x",
            ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Prefix", "/admin"));

        Assert.Equal("https", echo.Header("X-Forwarded-Proto"));
        Assert.Equal($"127.0.0.1:{site.HttpsPort}", echo.Header("X-Forwarded-Host"));
        Assert.Equal("/app2", echo.Header("X-Forwarded-Prefix"));
    }

    [Fact]
    public async Task A_backend_Location_pointing_at_itself_arrives_as_the_public_https_url_under_the_prefix()
    {
        var (response, body) = await site.GetAsync("/app2/redirect");

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal("app2", Echo.Parse(body).App);
        Assert.Equal($"https://127.0.0.1:{site.HttpsPort}/app2/welcome", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task A_backend_Location_that_is_an_absolute_path_gets_the_prefix()
    {
        // The echo backend sets this Location on a 200 (only `/redirect` itself answers 302): the rewrite
        // applies to the header whatever the status.
        var (response, _) = await site.GetAsync("/app3/redirect-relative");

        Assert.Equal("/app3/welcome", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task A_backend_cookie_with_Path_slash_arrives_with_the_app_path()
    {
        var (response, _) = await site.GetAsync("/app2/cookie");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["a=b; Path=/app2/"], response.Headers.GetValues("Set-Cookie").Where(c => !c.StartsWith("SRVID=")));
    }

    [Fact]
    public async Task Round_robin_spreads_requests_evenly_over_all_servers_of_an_app()
    {
        foreach (var (app, servers) in LbSite.ServersPerApp)
        {
            var requests = servers * 10;
            var hits = new Dictionary<string, int>();
            for (var i = 0; i < requests; i++)
            {
                var echo = await site.EchoAsync($"/{app}/rr/{i}");
                Assert.Equal(app, echo.App);
                hits[echo.Server] = hits.GetValueOrDefault(echo.Server) + 1;
            }

            var expected = Enumerable.Range(1, servers).Select(n => $"{app}_{n}").Order();
            Assert.Equal(expected, hits.Keys.Order());
            Assert.All(hits.Values, count => Assert.Equal(10, count));
        }
    }

    [Fact]
    public async Task A_dead_only_server_gives_a_502_page_and_other_apps_keep_being_served()
    {
        for (var i = 0; i < 3; i++)
        {
            var (response, body) = await site.GetAsync($"/dead/x{i}");
            Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
            Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains("502 Bad Gateway", body);
        }

        foreach (var app in LbSite.ServersPerApp.Keys)
            Assert.Equal(app, (await site.EchoAsync($"/{app}/still-alive")).App);
    }

    [Fact]
    public async Task A_dead_server_in_parallel_with_live_requests_does_not_disturb_them()
    {
        var dead = Enumerable.Range(0, 10).Select(i => site.GetAsync($"/dead/p{i}"));
        var live = Enumerable.Range(0, 10).Select(i => site.EchoAsync($"/app1/p{i}"));

        var deadResults = await Task.WhenAll(dead);
        var liveResults = await Task.WhenAll(live);

        Assert.All(deadResults, r => Assert.Equal(HttpStatusCode.BadGateway, r.Response.StatusCode));
        Assert.All(liveResults, echo => Assert.Equal("app1", echo.App));
    }
}

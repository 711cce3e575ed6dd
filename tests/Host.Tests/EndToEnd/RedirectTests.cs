using System.Net;
using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>Apache's two rewrite rules: http → https, and `/app` → `/app/`; everything else unknown is a 404.</summary>
[Collection(LbSiteCollection.Name)]
public sealed class RedirectTests(LbSite site)
{
    // Sent raw: HttpClient would normalise the dot-segments and escapes whose exact preservation is checked.
    [Theory]
    [InlineData("/app1/x?y=1")]
    [InlineData("/app1/a%20b/c?x=%2F&y=%41&z")]
    [InlineData("/")]
    [InlineData("/unknown/page?a=b")]
    [InlineData("/app1/../app2/x?q")]
    [InlineData("/app2")]
    public async Task Plain_http_is_redirected_to_https_with_path_and_query_exactly_as_sent(string target)
    {
        var response = await RawHttp.GetAsync(site.HttpPort, target, tlsThumbprint: null);

        Assert.Equal(302, response.Status);
        Assert.Equal($"https://127.0.0.1:{site.HttpsPort}{target}", response.Header("Location"));
    }

    [Fact]
    public async Task Plain_http_redirect_is_never_proxied()
    {
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false });
        var response = await client.GetAsync($"http://127.0.0.1:{site.HttpPort}/app1/anything?q=1");

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal($"https://127.0.0.1:{site.HttpsPort}/app1/anything?q=1", response.Headers.Location?.OriginalString);
        Assert.Equal("", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("/app2", "/app2/")]
    [InlineData("/app2?x=1&y", "/app2/?x=1&y")]
    [InlineData("/app3?a=%2F", "/app3/?a=%2F")]
    public async Task An_app_without_its_trailing_slash_is_redirected_to_it_with_the_query_kept(string target, string expected)
    {
        var response = await RawHttp.GetAsync(site.HttpsPort, target, site.Thumbprint);

        Assert.Equal(302, response.Status);
        // A relative Location (RFC 9110 §10.2.2) or an absolute one: either must name exactly this URL.
        var location = response.Header("Location") ?? "";
        if (location.StartsWith('/'))
            location = site.Https(location);
        Assert.Equal(site.Https(expected), location);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/app10/")]
    [InlineData("/app1x")]
    [InlineData("/app1x/y")]
    [InlineData("/nothing/here?x=1")]
    [InlineData("/APP1/x")]
    public async Task Anything_not_an_app_segment_is_a_404_page(string target)
    {
        var (response, body) = await site.GetAsync(target);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("404 Not Found", body);
    }
}

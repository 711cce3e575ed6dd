using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// The seed's `rspirep` and Apache's ProxyPassReverse, for every app at once: backend URLs in Location and
/// Content-Location come back under the public scheme, host and app prefix; Set-Cookie paths get the prefix.
/// The backend here builds its headers from what it received, as real applications do.
/// </summary>
[Collection(LbSiteCollection.Name)]
public sealed class ResponseRewriteTests(LbSite site)
{
    private async Task<HttpResponseMessage> ScriptedAsync(params (string Name, string Value)[] query)
    {
        var text = string.Join('&', query.Select(q => $"{q.Name}={Uri.EscapeDataString(q.Value)}"));
        var (response, _) = await site.GetAsync($"/web/respond?{text}");
        return response;
    }

    private string Public(string path) => site.Https(path);

    [Theory]
    [InlineData("http://{self}/welcome", "/web/welcome")]
    [InlineData("http://{self}/a/b?c=1&d=%2F#top", "/web/a/b?c=1&d=%2F#top")]
    [InlineData("http://{self}", "/web/")]
    [InlineData("http://{self}?x=1", "/web/?x=1")]
    [InlineData("http://{host}/welcome", "/web/welcome")]
    [InlineData("https://{host}/welcome", "/web/welcome")]
    [InlineData("//{self}/welcome", "/web/welcome")]
    [InlineData("HTTP://{self}/Welcome", "/web/Welcome")]
    public async Task A_location_at_the_backend_or_the_public_host_comes_back_public_under_the_prefix(string sent, string expectedPath)
    {
        var response = await ScriptedAsync(("location", sent));

        Assert.Equal(Public(expectedPath), response.Headers.Location?.OriginalString);
    }

    [Theory]
    [InlineData("/welcome", "/web/welcome")]
    [InlineData("/", "/web/")]
    [InlineData("welcome", "welcome")]
    [InlineData("../up", "../up")]
    [InlineData("https://example.com/x", "https://example.com/x")]
    [InlineData("http://127.0.0.2:1/x", "http://127.0.0.2:1/x")]
    [InlineData("mailto:ops@example.com", "mailto:ops@example.com")]
    public async Task Other_locations_get_the_prefix_only_when_they_are_absolute_paths(string sent, string expected)
    {
        var response = await ScriptedAsync(("location", sent));

        Assert.Equal(expected, response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task Content_location_is_rewritten_like_location()
    {
        var response = await ScriptedAsync(("content-location", "http://{self}/doc/1"));

        Assert.Equal(Public("/web/doc/1"), response.Content.Headers.ContentLocation?.OriginalString);
    }

    [Fact]
    public async Task Every_set_cookie_path_gets_the_prefix_and_other_attributes_are_kept()
    {
        var response = await ScriptedAsync(
            ("cookie", "a=1; Path=/; HttpOnly"),
            ("cookie", "b=2; path=/sub; Secure; SameSite=Lax"),
            ("cookie", "c=3"),
            ("cookie", "d=4; Max-Age=60; Path=/x/y"));

        Assert.Equal(
            ["a=1; Path=/web/; HttpOnly", "b=2; path=/web/sub; Secure; SameSite=Lax", "c=3", "d=4; Max-Age=60; Path=/web/x/y"],
            response.Headers.GetValues("Set-Cookie").Where(c => !c.StartsWith("SRVID=")));
    }

    [Fact]
    public async Task Rewrites_work_over_http2_too()
    {
        using var client = PinnedTls.Client(site.Thumbprint, System.Net.HttpVersion.Version20);
        var response = await client.GetAsync(site.Https(
            $"/web/respond?location={Uri.EscapeDataString("http://{self}/w")}&cookie={Uri.EscapeDataString("k=v; Path=/")}"));

        Assert.Equal(System.Net.HttpVersion.Version20, response.Version);
        Assert.Equal(Public("/web/w"), response.Headers.Location?.OriginalString);
        Assert.Equal(["k=v; Path=/web/"], response.Headers.GetValues("Set-Cookie").Where(c => !c.StartsWith("SRVID=")));
    }
}

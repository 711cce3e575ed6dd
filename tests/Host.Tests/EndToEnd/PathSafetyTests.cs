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
        // `..%2F` is one segment that is not a dot-segment: app1's server gets it as data, app2 is not reached.
        { "/app1/..%2Fapp2/x", "app1", "/..%2Fapp2/x" },
        { "/app1/%2e%2e%2fapp2/x", "app1", "/..%2Fapp2/x" },
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

    /// <summary>RFC 3986 §6.2.2: escapes of unreserved characters decoded, other escapes upper-cased and kept.</summary>
    [Theory]
    [InlineData("/app1/caf%c3%a9", "/caf%C3%A9")]
    [InlineData("/app1/%7Euser/%41%42", "/~user/AB")]
    [InlineData("/app1/a%2Fb", "/a%2Fb")]
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

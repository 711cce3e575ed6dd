using System.Net;
using System.Text.RegularExpressions;
using Lb.Host.Demo;
using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// samples/rules.toml observed through real requests: its [[rules]] and [[apps.X.rules]] as written, its servers
/// replaced by echo backends. Each sample rule in turn: the beta header pinned to app1_3, the admin path closed to
/// clients outside the internal networks, the maintenance 503 of app3, the redirect of the old host name.
/// </summary>
public sealed class RulesTests : IAsyncLifetime
{
    private readonly List<EchoBackend> _backends = [];
    private LbInstance _lb = null!;

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Lb.sln")))
                return dir.FullName;
        throw new InvalidOperationException("Lb.sln not found above the test binaries");
    }

    /// <summary>The sample from its first rule on ([listen] and [tls] come from the test), servers swapped for backends.</summary>
    private string SampleBody(Func<string, string>? edit = null)
    {
        var text = File.ReadAllText(Path.Combine(RepoRoot(), "samples", "rules.toml"));
        var body = text[(text.IndexOf("\n[[rules]]", StringComparison.Ordinal) + 1)..];
        foreach (var backend in _backends)
        {
            var app = int.Parse(backend.Name[3..backend.Name.IndexOf('_')]);
            var server = int.Parse(backend.Name[(backend.Name.IndexOf('_') + 1)..]);
            body = body.Replace($"\"127.0.0.1:9{app}0{server}\"", $"\"{backend.Address}\"");
        }
        Assert.DoesNotMatch(new Regex("127\\.0\\.0\\.1:9[0-9]0[0-9]\""), body);
        return edit is null ? body : edit(body);
    }

    public async Task InitializeAsync()
    {
        foreach (var name in new[] { "app1_1", "app1_2", "app1_3", "app2_1", "app2_2", "app3_1" })
            _backends.Add(await EchoBackend.StartAsync(name));
        _lb = await LbInstance.StartAsync(SampleBody());
    }

    public async Task DisposeAsync()
    {
        await _lb.DisposeAsync();
        foreach (var backend in _backends)
            await backend.DisposeAsync();
    }

    private static async Task<(HttpResponseMessage Response, string Body)> SendAsync(LbInstance lb, string target, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, lb.Https(target));
        foreach (var (name, value) in headers)
            if (name == "Host")
                request.Headers.Host = value;
            else
                request.Headers.TryAddWithoutValidation(name, value);
        var response = await lb.Client.SendAsync(request);
        return (response, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Beta_testers_reach_app1_3_only_and_everyone_else_never_does()
    {
        var others = new List<string>();
        for (var i = 0; i < 12; i++)
        {
            var (beta, betaBody) = await SendAsync(_lb, $"/app1/x{i}", ("X-Beta", "1"));
            Assert.Equal(HttpStatusCode.OK, beta.StatusCode);
            Assert.Equal("app1_3", Echo.Parse(betaBody).Server);
            Assert.Equal("app1_3", beta.Headers.GetValues("X-Beta-Server").Single());

            var (other, otherBody) = await SendAsync(_lb, $"/app1/y{i}");
            Assert.Equal(HttpStatusCode.OK, other.StatusCode);
            Assert.Contains(Echo.Parse(otherBody).Server, new[] { "app1_1", "app1_2" });
            Assert.False(other.Headers.Contains("X-Beta-Server"));
            others.Add(Echo.Parse(otherBody).Server);
        }
        // Interleaved with the pinned requests, the others still take turns between app1_1 and app1_2.
        Assert.Equal(6, others.Count(s => s == "app1_1"));
    }

    [Fact]
    public async Task A_persistence_cookie_for_a_server_outside_the_pin_is_not_honoured()
    {
        var (response, body) = await SendAsync(_lb, "/app1/x", ("X-Beta", "1"), ("Cookie", "SRVID=app1_1"));
        Assert.Equal("app1_3", Echo.Parse(body).Server);
        Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("SRVID=app1_3;", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_admin_path_is_closed_to_a_client_outside_the_internal_networks()
    {
        // The test client is 127.0.0.1: not in 10.0.0.0/8 or 192.168.0.0/16.
        var (admin, adminBody) = await SendAsync(_lb, "/app2/admin/users");
        Assert.Equal(HttpStatusCode.Forbidden, admin.StatusCode);
        Assert.Contains("403", adminBody);
        var (other, otherBody) = await SendAsync(_lb, "/app2/public");
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        Assert.Equal("/public", Echo.Parse(otherBody).Target);
    }

    [Fact]
    public async Task The_admin_path_is_open_to_a_client_in_the_internal_networks()
    {
        // The same rule with loopback counted as internal.
        await using var lb = await LbInstance.StartAsync(SampleBody(body => body.Replace("\"192.168.0.0/16\"", "\"127.0.0.0/8\"")));
        var (admin, body) = await SendAsync(lb, "/app2/admin/users");
        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
        Assert.Equal("/admin/users", Echo.Parse(body).Target);
    }

    [Fact]
    public async Task App3_under_maintenance_answers_503_and_its_server_sees_nothing()
    {
        var (response, body) = await SendAsync(_lb, "/app3/anything");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("503", body);
        Assert.DoesNotContain("app3_1", body);
    }

    [Fact]
    public async Task The_old_host_name_is_redirected_with_path_and_query()
    {
        var (response, _) = await SendAsync(_lb, "/app2/x?y=1", ("Host", "old.example.com"));
        Assert.Equal(HttpStatusCode.MovedPermanently, response.StatusCode);
        Assert.Equal("https://www.example.com/app2/x?y=1", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task Header_edits_reach_the_backend_and_the_client_and_route_ignores_the_path()
    {
        var body =
            "[[rules]]\nwhen = { header = { name = \"X-Api\" } }\n" +
            "then = { route = \"app2\", set_request_header = { \"X-Routed\" = \"yes\" }, remove_request_header = [\"X-Drop\"], " +
            "add_response_header = { \"X-Via-Rule\" = \"rules[0]\" } }\n" +
            SampleBody()[(SampleBody().IndexOf("\n[apps.app1]", StringComparison.Ordinal) + 1)..];
        await using var lb = await LbInstance.StartAsync(body);
        var (response, text) = await SendAsync(lb, "/app1/some/where?q", ("X-Api", "1"), ("X-Drop", "secret"), ("X-Keep", "k"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var echo = Echo.Parse(text);
        Assert.StartsWith("app2_", echo.Server);
        Assert.Equal("/app1/some/where?q", echo.Target);
        Assert.Equal("yes", echo.Header("X-Routed"));
        Assert.Null(echo.Header("X-Drop"));
        Assert.Equal("k", echo.Header("X-Keep"));
        Assert.Equal("rules[0]", response.Headers.GetValues("X-Via-Rule").Single());
    }
}

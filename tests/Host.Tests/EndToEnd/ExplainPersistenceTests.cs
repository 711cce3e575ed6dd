using Lb.Host.Tests.Support;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// `lb explain -c FILE URL --cookie "..."` as a user runs it (issue 3, Must show): the persistence decision,
/// cookie found and server pinned, or cookie ignored and why, and what the backend's Cookie header becomes.
/// </summary>
public sealed class ExplainPersistenceTests : IDisposable
{
    private readonly ConfigFolder _folder = new();
    private readonly string _config;

    public ExplainPersistenceTests()
    {
        _config = _folder.Write("lb.toml", $$"""
            [listen]
            https = "127.0.0.1:18443"
            {{ConfigFolder.TlsSection}}
            [apps.app1]
            servers = [
              { name = "app1_1", address = "127.0.0.1:9101" },
              { name = "app1_2", address = "127.0.0.1:9102" },
              { name = "app1_3", address = "127.0.0.1:9103" },
            ]
            [apps.app2]
            servers = [ { name = "app2_1", address = "127.0.0.1:9201" } ]
            [apps.app3]
            persistence = { mode = "opaque" }
            servers = [
              { name = "app3_1", address = "127.0.0.1:9301" },
              { name = "app3_2", address = "127.0.0.1:9302" },
            ]
            """);
    }

    private async Task<string[]> ExplainAsync(string url, string? cookie)
    {
        var args = new List<string> { "explain", "-c", _config, url };
        if (cookie is not null)
            args.AddRange(["--cookie", cookie]);
        var result = await LbProgram.RunAsync(args);
        Assert.True(result.ExitCode == 0, result.Stderr + result.Stdout);
        return result.StdoutLines.Select(l => l.Trim()).ToArray();
    }

    private static string PersistenceLine(string[] lines) => Assert.Single(lines, l => l.StartsWith("persistence:", StringComparison.Ordinal));

    [Fact]
    public async Task A_valid_cookie_is_found_and_pins_its_server_and_the_backend_gets_the_other_cookies()
    {
        var lines = await ExplainAsync("https://site/app1/x", "SRVID=app1_2; a=b");

        Assert.Contains("request Cookie: SRVID=app1_2; a=b", lines);
        Assert.Equal("persistence: cookie SRVID=app1_2 found → pinned to app1_2 (no Set-Cookie)", PersistenceLine(lines));
        Assert.Contains("Cookie: a=b", lines);
        Assert.DoesNotContain(lines, l => l.Contains("Set-Cookie: SRVID", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_cookie_is_found_among_hostile_cookies()
    {
        var lines = await ExplainAsync("https://site/app1/x", "q=\"a, SRVID=app1_1\"; x=y=z; SRVID=app1_3; srvid=app1_2");

        Assert.Equal("persistence: cookie SRVID=app1_3 found → pinned to app1_3 (no Set-Cookie)", PersistenceLine(lines));
        Assert.Contains("Cookie: q=\"a, SRVID=app1_1\"; x=y=z; srvid=app1_2", lines);
    }

    [Theory]
    [InlineData("SRVID=forged; a=b", "'forged'")]
    [InlineData("SRVID=app2_1; a=b", "'app2_1'")]
    public async Task A_forged_or_other_app_value_is_ignored_with_the_reason_and_a_new_cookie(string cookie, string quoted)
    {
        var lines = await ExplainAsync("https://site/app1/x", cookie);

        var line = PersistenceLine(lines);
        Assert.StartsWith($"persistence: ignored: unknown value {quoted} (forged or other app) → balance (roundrobin) + new cookie: ", line);
        Assert.Matches(@"Set-Cookie: SRVID=app1_[123]; Path=/app1/; HttpOnly; Secure; SameSite=Lax", line);
        Assert.Contains(lines, l => l.Contains("Cache-Control: gets private", StringComparison.Ordinal));
        Assert.Contains("Cookie: a=b", lines);
    }

    [Fact]
    public async Task Without_a_cookie_it_says_so_and_shows_the_cookie_to_be_set()
    {
        var lines = await ExplainAsync("https://site/app1/x", null);

        Assert.Matches(@"^persistence: no cookie → balance \(roundrobin\) \+ Set-Cookie: SRVID=app1_1; Path=/app1/; HttpOnly; Secure; SameSite=Lax",
            PersistenceLine(lines));
    }

    [Fact]
    public async Task An_opaque_value_computed_from_the_config_pins_its_server_and_a_named_one_is_ignored()
    {
        var opaque = Lb.Rules.Cookies.OpaqueValue("app3", "app3_2", "127.0.0.1:9302");

        var pinned = PersistenceLine(await ExplainAsync("https://site/app3/x", $"SRVID={opaque}"));
        var named = PersistenceLine(await ExplainAsync("https://site/app3/x", "SRVID=app3_2"));

        Assert.Equal($"persistence: cookie SRVID={opaque} found → pinned to app3_2 (no Set-Cookie)", pinned);
        Assert.StartsWith("persistence: ignored: unknown value 'app3_2'", named);
        Assert.DoesNotContain("Set-Cookie: SRVID=app3_", named);
    }

    public void Dispose() => _folder.Dispose();
}

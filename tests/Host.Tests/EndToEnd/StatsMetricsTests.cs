using System.Net;
using System.Text.RegularExpressions;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>`/metrics` parses as Prometheus text and counts exactly the requests the test sent; the access log names them.</summary>
public sealed class StatsMetricsTests : IAsyncLifetime
{
    private StatsSite _site = null!;

    public async Task InitializeAsync() => _site = await StatsSite.StartAsync();

    public async Task DisposeAsync() => await _site.DisposeAsync();

    private async Task<Dictionary<string, StatsPrometheusText.Family>> ScrapeAsync()
    {
        var response = await _site.Stats.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        return StatsPrometheusText.Parse(await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Metrics_parse_as_Prometheus_text_and_match_the_requests_sent()
    {
        var bodyBytes = new Dictionary<string, long>();
        var perServer = new Dictionary<string, int>();
        async Task Send(string target, string? cookie = null)
        {
            var (echo, _, response, body) = await _site.GetAsync(target, cookie);
            perServer[echo.Server] = perServer.GetValueOrDefault(echo.Server) + 1;
            bodyBytes[echo.Server] = bodyBytes.GetValueOrDefault(echo.Server) + System.Text.Encoding.UTF8.GetByteCount(body);
            Assert.Equal(body.Length, response.Content.Headers.ContentLength ?? body.Length);
        }
        for (var i = 0; i < 9; i++)
            await Send($"/app1/n{i}");
        var pinned = await _site.GetAsync("/app2/first");
        perServer[pinned.Echo.Server] = 1;
        bodyBytes[pinned.Echo.Server] = System.Text.Encoding.UTF8.GetByteCount(pinned.Body);
        for (var i = 0; i < 5; i++)
            await Send($"/app2/p{i}", pinned.NewCookie);
        using (var post = new StringContent(new string('x', 1000)))
            Assert.True((await _site.Proxy.PostAsync("/app1/upload", post)).IsSuccessStatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _site.Proxy.GetAsync("/nosuchapp/x")).StatusCode);

        var metrics = await ScrapeAsync();

        Assert.Equal("counter", metrics["lb_app_requests_total"].Type);
        Assert.Equal(10, metrics.Value("lb_app_requests_total", ("app", "app1")));
        Assert.Equal(6, metrics.Value("lb_app_requests_total", ("app", "app2")));
        Assert.Equal(10, metrics.Value("lb_app_responses_total", ("app", "app1"), ("code", "2xx")));
        Assert.Equal(0, metrics.Value("lb_app_responses_total", ("app", "app1"), ("code", "5xx")));
        Assert.Equal(10, metrics.Sum("lb_server_sessions_total", ("app", "app1")));
        Assert.Equal(6, metrics.Sum("lb_server_sessions_total", ("app", "app2")));
        foreach (var (server, count) in perServer.Where(p => p.Key.StartsWith("app2", StringComparison.Ordinal)))
        {
            Assert.Equal(count, metrics.Value("lb_server_sessions_total", ("server", server)));
            Assert.Equal(count, metrics.Value("lb_server_responses_total", ("server", server), ("code", "2xx")));
            Assert.Equal(bodyBytes[server], metrics.Value("lb_server_bytes_out_total", ("server", server)));
        }
        Assert.Equal(5, metrics.Value("lb_server_persistence_hits_total", ("server", pinned.Echo.Server)));
        Assert.Equal(1000, metrics.Sum("lb_server_bytes_in_total", ("app", "app1")));
        Assert.Equal(5, metrics.Sum("lb_server_up"));
        Assert.Equal(1, metrics.Value("lb_server_status", ("server", "app1_1"), ("state", "UP")));
        Assert.Equal(0, metrics.Value("lb_server_status", ("server", "app1_1"), ("state", "DOWN")));
        Assert.Equal(0, metrics.Sum("lb_server_sessions_current"));
        Assert.True(metrics.Value("lb_server_checks_total", ("server", "app1_1"), ("result", "passed")) >= 0);

        // Counters move with traffic between scrapes.
        await Send("/app1/more");
        Assert.Equal(11, (await ScrapeAsync()).Value("lb_app_requests_total", ("app", "app1")));
    }

    [Fact]
    public async Task The_access_log_names_app_server_status_and_timings()
    {
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/app1/logged?q=1"))
        {
            request.Headers.Add("X-Forwarded-For", "203.0.113.9");
            request.Headers.Add("User-Agent", "stats-test/1.0");
            request.Headers.Add("Referer", "http://example.test/from");
            var response = await _site.Proxy.SendAsync(request);
            Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
        Assert.Equal(HttpStatusCode.NotFound, (await _site.Proxy.GetAsync("/nosuchapp/y")).StatusCode);

        var lines = await LinesAsync(2);

        var line = lines.Single(l => l.Contains("/app1/logged", StringComparison.Ordinal));
        var match = Regex.Match(line,
            """^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET /app1/logged\?q=1 HTTP/1\.1" 200 (\d+) "http://example\.test/from" "stats-test/1\.0" app=app1 server=(app1_[123]) queue=(\d+) connect=(\d+) response=(\d+) total=(\d+) xff="203\.0\.113\.9"$""");
        Assert.True(match.Success, line);
        Assert.True(long.Parse(match.Groups[1].Value) > 0);
        var total = long.Parse(match.Groups[6].Value);
        Assert.True(long.Parse(match.Groups[3].Value) + long.Parse(match.Groups[4].Value) + long.Parse(match.Groups[5].Value) <= total + 1, line);

        var notFound = lines.Single(l => l.Contains("/nosuchapp/y", StringComparison.Ordinal));
        Assert.Contains("\" 404 ", notFound);
        Assert.Contains("app=- server=- queue=0 connect=-1 response=-1 total=", notFound);
    }

    [Fact]
    public async Task Health_checks_are_never_in_the_access_log()
    {
        await _site.GetAsync("/app2/one");
        await Task.Delay(TimeSpan.FromSeconds(1)); // three check rounds
        var lines = await LinesAsync(1);
        Assert.Single(lines);
        Assert.DoesNotContain(lines, l => l.Contains("lb-healthcheck", StringComparison.Ordinal));
    }

    /// <summary>The log's lines once it holds at least <paramref name="count"/> (the writer flushes when idle).</summary>
    private async Task<string[]> LinesAsync(int count)
    {
        string[] lines = [];
        await StatsSite.EventuallyAsync(() =>
        {
            using var stream = new FileStream(_site.AccessLogPath, FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            lines = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            return lines.Length >= count;
        }, TimeSpan.FromSeconds(10), $"{count} access log lines");
        return lines;
    }
}

using Lb.Host.Tests.EndToEnd;
using Lb.Host.Tests.Support;
using Lb.Tests;
using Microsoft.Playwright;
using Xunit;
using Xunit.Abstractions;

namespace Lb.Host.Tests.Browser;

/// <summary>
/// The stats page in a real headless Chromium (Debian's `chromium`, driven by Playwright; no browser download):
/// 401 without credentials, every server listed with them, a stopped backend turning DOWN after the page's own
/// refresh, and a Drain button that stops new clients from reaching that server. Saves artifacts/stats.png.
/// </summary>
public sealed class StatsPageBrowserTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string ChromiumPath = "/usr/bin/chromium";

    private StatsSite _site = null!;
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public async Task InitializeAsync()
    {
        _site = await StatsSite.StartAsync();
        if (!File.Exists(ChromiumPath))
        {
            if (Environment.GetEnvironmentVariable("CI") == "true")
                throw new InvalidOperationException($"{ChromiumPath} is missing: .ci/run installs Debian's chromium");
            return;
        }
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
            await _browser.DisposeAsync();
        _playwright?.Dispose();
        await _site.DisposeAsync();
    }

    /// <summary>The browser; skips the calling test when Debian's chromium is missing (outside CI, which fails then).</summary>
    private IBrowser Browser
    {
        get
        {
            Skip.If(_browser is null && Requires.Chromium() is not null, Requires.Chromium());
            return _browser ?? throw new InvalidOperationException($"no browser at {ChromiumPath}");
        }
    }

    private static string Row(string server) => $"tr[data-server='{server}']";

    [SkippableFact]
    public async Task An_operator_sees_every_server_watches_one_go_down_and_drains_another()
    {
        // Without credentials: 401 and the Basic challenge. Chromium under automation cancels the login prompt
        // and fails the navigation, so ask from the one page served without credentials, as a script would.
        await using (var anonymous = await Browser.NewContextAsync(new() { BypassCSP = true }))
        {
            var page = await anonymous.NewPageAsync();
            var health = await page.GotoAsync(_site.StatsUrl + "healthz");
            Assert.Equal(200, health!.Status);
            var answer = await page.EvaluateAsync<string[]>(
                "async () => { const r = await fetch('/', { credentials: 'omit' }); return [String(r.status), r.headers.get('www-authenticate'), await r.text()]; }");
            Assert.Equal("401", answer[0]);
            Assert.Equal($"Basic realm=\"{StatsSite.Realm}\", charset=\"UTF-8\"", answer[1]);
            Assert.DoesNotContain("data-server", answer[2]);
            await Assert.ThrowsAsync<PlaywrightException>(() => page.GotoAsync(_site.StatsUrl));
        }

        await using var context = await Browser.NewContextAsync(new()
        {
            HttpCredentials = new() { Username = StatsSite.User, Password = StatsSite.Password },
            ViewportSize = new() { Width = 1700, Height = 900 },
        });
        var stats = await context.NewPageAsync();
        var loaded = await stats.GotoAsync(_site.StatsUrl);
        Assert.Equal(200, loaded!.Status);

        // Every server of every app is listed, UP.
        foreach (var server in new[] { "app1/app1_1", "app1/app1_2", "app1/app1_3", "app2/app2_1", "app2/app2_2" })
            Assert.Equal("UP", await stats.Locator($"{Row(server)} [data-status]").InnerTextAsync());
        Assert.Equal("stats-node", await stats.Locator("[data-node]").InnerTextAsync());

        // Some traffic, so the counters on the screenshot are not all zero.
        for (var i = 0; i < 20; i++)
            await _site.GetAsync($"/app{1 + i % 2}/warmup{i}");

        // A backend stopped by the test turns DOWN on the page by its own refresh (1 s), no reload by the test.
        await _site.StopBackendAsync("app1_3");
        await stats.Locator($"{Row("app1/app1_3")} [data-status='DOWN']").WaitForAsync(new() { Timeout = 15_000 });

        // Drain app1_1 by clicking its button; the page comes back (303) showing DRAIN.
        await stats.Locator("button[data-action='drain'][data-server='app1/app1_1']").ClickAsync();
        await stats.Locator($"{Row("app1/app1_1")} [data-status='DRAIN']").WaitForAsync(new() { Timeout = 10_000 });
        Assert.Equal("DRAIN", _site.State.Apps[0].Servers[0].Status.ToString());

        // New clients never reach the drained server (nor the stopped one).
        var reached = new List<string>();
        for (var i = 0; i < 30; i++)
            reached.Add((await _site.GetAsync($"/app1/after-drain{i}")).Echo.Server);
        Assert.DoesNotContain("app1_1", reached);
        Assert.DoesNotContain("app1_3", reached);
        Assert.All(reached, server => Assert.Equal("app1_2", server));

        // The page logs the action; then a screenshot for people to look at.
        await stats.ReloadAsync();
        Assert.Contains("app1/app1_1 READY -> DRAIN", await stats.Locator(".actions").InnerTextAsync());
        var screenshot = Path.Combine(LbProgram.RepositoryRoot, "artifacts", "stats.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        await stats.ScreenshotAsync(new() { Path = screenshot, FullPage = true });
        output.WriteLine($"screenshot: {screenshot}");
    }
}

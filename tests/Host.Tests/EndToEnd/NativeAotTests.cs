using System.Diagnostics;
using Lb.Host.Demo;
using Lb.Host.Tests.Support;
using Lb.Tests;
using Xunit;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// lb compiled ahead of time (NativeAOT: the README's publish line, `bench/run.sh` with LB_AOT=1) behaves as the
/// JIT build. NativeAOT keeps only what it can see statically, and lb's CLI is Argu reflecting over F# unions: it
/// works only through src/Host.cs/NativeAot.rd.xml and bench/aot/SpecialNames, which nothing else would notice
/// breaking. So every command's help, every config error, `explain` and `config show` must print the same bytes
/// from both builds, and the README's demo must serve from the native binary.
/// </summary>
public sealed class NativeAotTests : IClassFixture<NativeAotBuild>, IDisposable
{
    private readonly NativeAotBuild _build;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"lb-aot-tests-{Guid.NewGuid():N}");

    public NativeAotTests(NativeAotBuild build) => _build = build;

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }

    [SkippableTheory]
    [InlineData("--help")]
    [InlineData("run --help")]
    [InlineData("check --help")]
    [InlineData("explain --help")]
    [InlineData("config --help")]
    [InlineData("config show --help")]
    [InlineData("demo --help")]
    [InlineData("hash-password --help")]
    [InlineData("--version")]
    [InlineData("frobnicate")]
    [InlineData("run --config")]
    public async Task Every_command_line_reads_the_same_from_both_builds(string commandLine) =>
        await AssertSameOutputAsync(commandLine.Split(' '));

    [SkippableTheory]
    [InlineData("broken-three-mistakes.toml")]
    [InlineData("broken-three-rule-mistakes.toml")]
    [InlineData("rules.toml")]
    [InlineData("three-apps.toml")]
    [InlineData("ha-pair/lb1.toml")]
    public async Task Check_reports_a_sample_the_same_from_both_builds(string sample) =>
        await AssertSameOutputAsync(["check", "-c", LbProgram.Sample(sample)]);

    [SkippableFact]
    public async Task Check_with_a_peer_prints_the_same_failover_table_from_both_builds() =>
        await AssertSameOutputAsync(["check", "-c", LbProgram.Sample("ha-pair/lb1.toml"), "--peer", LbProgram.Sample("ha-pair/lb2.toml")]);

    /// <summary>
    /// Every kind of formatted number and quoted value in a config error: F#'s printf needs code generated at run
    /// time, which NativeAOT cannot do, so a message built with it would crash the native build.
    /// </summary>
    [SkippableFact]
    public async Task Check_reports_formatted_errors_the_same_from_both_builds()
    {
        var config = ThreeAppsWithCertificates(
            """

            [apps.app4]
            health = { path = "/", expect = "5-1,9xx,300-200,abc,2-3-4", rise = 0, fall = 1001 }
            servers = [
              { name = "a", address = "127.0.0.1:9001", cookie = "x" },
              { name = "b", address = "127.0.0.1:9002", cookie = "x" },
              { name = "c", address = "127.0.0.1:9003", cookie = "x y" },
            ]
            """);

        var result = await AssertSameOutputAsync(["check", "-c", config]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("runs backwards", result.Stdout);
        Assert.Contains("is used by 2 servers", result.Stdout);
    }

    [SkippableTheory]
    [InlineData("https://site/app1/x?y")]
    [InlineData("http://site/app1/x?y")]
    [InlineData("https://site/app2")]
    [InlineData("https://site/app10/")]
    [InlineData("https://site/app1/../app3/z")]
    public async Task Explain_decides_the_same_in_both_builds(string url)
    {
        var config = ThreeAppsWithCertificates();

        var plain = await AssertSameOutputAsync(["explain", "-c", config, url]);
        var pinned = await AssertSameOutputAsync(["explain", "-c", config, url, "--cookie", "SRVID=app1_2; a=b"]);

        Assert.Equal(0, plain.ExitCode);
        Assert.Equal(0, pinned.ExitCode);
    }

    [SkippableFact]
    public async Task Config_show_prints_the_same_effective_config_from_both_builds()
    {
        var result = await AssertSameOutputAsync(["config", "show", "-c", ThreeAppsWithCertificates()]);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("[apps.app1]", result.Stdout);
    }

    [SkippableFact]
    public Task The_readme_demo_serves_from_the_native_binary() =>
        DemoTests.ServeTheReadmeDemoAndStop(_build.Binary);

    /// <summary>
    /// `lb run` from the native binary forwards to a backend, and its stats site answers: the page, the JSON (built
    /// without the reflection serializer for this build), Prometheus metrics, behind HTTP Basic.
    /// </summary>
    [SkippableFact]
    public async Task Lb_run_forwards_and_serves_its_stats_site_from_the_native_binary()
    {
        await using var backend = await EchoBackend.StartAsync("app1_1");
        var site = new StatsSiteConfig(_directory);
        site.Write(Server("app1", backend));

        await using var lb = await LbProcess.StartAsync(site.Path, nativeBinary: _build.Binary);
        using var client = new HttpClient();
        var echo = Echo.Parse(await client.GetStringAsync($"{site.Proxy}/app1/native?x=1"));
        Assert.Equal("/native?x=1", echo.Target);

        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await client.GetAsync($"{site.Stats}/stats.json")).StatusCode);
        using var stats = site.StatsClient();
        using var json = System.Text.Json.JsonDocument.Parse(await stats.GetStringAsync("/stats.json"));
        var app = Assert.Single(json.RootElement.GetProperty("apps").EnumerateArray());
        Assert.Equal("app1", app.GetProperty("name").GetString());
        Assert.Equal(1, app.GetProperty("requests").GetInt64());
        Assert.Equal("app1_1", Assert.Single(app.GetProperty("servers").EnumerateArray()).GetProperty("name").GetString());
        Assert.Contains("lb_server_", await stats.GetStringAsync("/metrics"));
        Assert.Contains("app1_1", await stats.GetStringAsync("/"));
    }

    /// <summary>
    /// What the JIT build's ReloadTests, StatsEndpointTests and ShutdownTests check, once each from the native binary:
    /// an admin POST from the stats page (token and Origin checked) takes a server out, SIGHUP applies a changed
    /// config and refuses a broken one while the running config keeps serving, and SIGTERM ends lb with exit code 0.
    /// </summary>
    [SkippableFact]
    public async Task Admin_actions_reload_and_sigterm_work_from_the_native_binary()
    {
        await using var one = await EchoBackend.StartAsync("app1_1");
        await using var two = await EchoBackend.StartAsync("app1_2");
        await using var other = await EchoBackend.StartAsync("app2_1");
        var site = new StatsSiteConfig(_directory);
        site.Write(Server("app1", one, two));
        await using var lb = await LbProcess.StartAsync(site.Path, nativeBinary: _build.Binary);
        // No cookies: each request is a new client, so the balancing spreads them (the persistence cookie would pin them).
        using var proxy = new HttpClient(new SocketsHttpHandler { UseCookies = false }) { BaseAddress = new Uri(site.Proxy) };
        using var stats = site.StatsClient();
        async Task<HashSet<string>> ServersAsync(string app)
        {
            var seen = new HashSet<string>();
            for (var i = 0; i < 6; i++)
                seen.Add(Echo.Parse(await proxy.GetStringAsync($"/{app}/x")).Server);
            return seen;
        }
        Assert.Equal(["app1_1", "app1_2"], (await ServersAsync("app1")).Order());

        var token = System.Text.RegularExpressions.Regex.Match(await stats.GetStringAsync("/"), "name=\"token\" value=\"([^\"]+)\"").Groups[1].Value;
        using var maint = new HttpRequestMessage(HttpMethod.Post, "/admin")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["token"] = token, ["app"] = "app1", ["server"] = "app1_1", ["action"] = "maint", ["drain_seconds"] = "",
            }),
        };
        maint.Headers.Add("Origin", site.Stats);
        Assert.Equal(System.Net.HttpStatusCode.SeeOther, (await stats.SendAsync(maint)).StatusCode);
        Assert.Equal(["app1_2"], await ServersAsync("app1"));

        site.Write(Server("app1", one, two) + Server("app2", other));
        Assert.Contains("reload #2 applied (SIGHUP): apps added: app2", await lb.ReloadAsync());
        Assert.Equal(["app2_1"], await ServersAsync("app2"));

        site.Write(Server("app1", one, two) + Server("app2", other) + "[apps.app3]\nservers = []\n");
        Assert.Contains("reload refused (SIGHUP): 1 error(s)", await lb.ReloadAsync());
        Assert.Equal(["app2_1"], await ServersAsync("app2"));

        lb.Signal(LbProgram.Sigterm);
        Assert.Equal(0, await lb.WaitForExitAsync(TimeSpan.FromSeconds(20)));
    }

    /// <summary>`[apps.NAME]` with one server per backend, named as the backend.</summary>
    private static string Server(string app, params EchoBackend[] backends) =>
        $"[apps.{app}]\nservers = [ {string.Join(", ", backends.Select(b => $"{{ name = \"{b.Name}\", address = \"{b.Address}\" }}"))} ]\n";

    /// <summary>
    /// An lb.toml in <paramref name="directory"/>: plain HTTP proxied on one free port, the stats site on another
    /// behind HTTP Basic (user ops), no access log, then the apps given to <see cref="Write"/>.
    /// </summary>
    private sealed class StatsSiteConfig(string directory)
    {
        private const string Password = "a native pass phrase, long enough";
        private static readonly string Hash = Lb.Rules.Password.Hash(Password, System.Security.Cryptography.RandomNumberGenerator.GetBytes(16), 20_000).ToString();
        private readonly int _port = FreePort.Next();
        private readonly int _statsPort = FreePort.Next();

        public string Path { get; } = System.IO.Path.Combine(Directory.CreateDirectory(directory).FullName, "lb.toml");
        public string Proxy => $"http://127.0.0.1:{_port}";
        public string Stats => $"http://127.0.0.1:{_statsPort}";

        public void Write(string apps) => File.WriteAllText(Path, $"""
            [listen]
            http = "127.0.0.1:{_port}"
            plain_http = "proxy"
            [stats]
            listen = "127.0.0.1:{_statsPort}"
            user = "ops"
            password_hash = "{Hash}"
            [log]
            access = "off"

            """ + apps);

        /// <summary>
        /// Signed in. Redirects not followed: the admin answer is a 303 to the page, and HttpClient drops the
        /// credentials when it follows one.
        /// </summary>
        public HttpClient StatsClient()
        {
            var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(Stats) };
            client.DefaultRequestHeaders.Authorization =
                new("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"ops:{Password}")));
            return client;
        }
    }

    private async Task<LbProgram.Result> AssertSameOutputAsync(string[] args)
    {
        var nativeBinary = _build.Binary;
        var jit = await LbProgram.RunAsync(args);
        var native = await LbProgram.RunAsync(args, nativeBinary: nativeBinary);
        Assert.Equal(jit.Stdout, native.Stdout);
        Assert.Equal(jit.Stderr, native.Stderr);
        Assert.Equal(jit.ExitCode, native.ExitCode);
        return native;
    }

    /// <summary>samples/three-apps.toml with the PEM files its [tls] paths name, and <paramref name="extra"/> appended.</summary>
    private string ThreeAppsWithCertificates(string extra = "")
    {
        Directory.CreateDirectory(_directory);
        var config = Path.Combine(_directory, "three-apps.toml");
        File.WriteAllText(config, File.ReadAllText(LbProgram.Sample("three-apps.toml")) + extra);
        if (!Directory.Exists(Path.Combine(_directory, "tls")))
            LbProgram.WriteSampleCertificates(_directory);
        return config;
    }
}

/// <summary>
/// Publishes lb with NativeAOT once for <see cref="NativeAotTests"/>, from a copy of the sources (so the test run's
/// own build outputs are not touched), bounded at 15 minutes.
/// </summary>
public sealed class NativeAotBuild : IAsyncLifetime
{
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromMinutes(15);
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"lb-aot-build-{Guid.NewGuid():N}");
    private string? _binary;
    private string _failure = "not built yet";

    /// <summary>
    /// The native `lb`; skips the calling test when clang or zlib1g-dev is missing (<see cref="Requires"/>), fails it
    /// with the build's output if it did not build.
    /// </summary>
    public string Binary
    {
        get
        {
            Skip.If(Requires.NativeAotToolchain() is not null, Requires.NativeAotToolchain());
            return _binary ?? throw new Xunit.Sdk.XunitException("the NativeAOT publish failed:\n" + _failure);
        }
    }

    public async Task InitializeAsync()
    {
        if (Requires.NativeAotToolchain() is not null) return;
        CopySources();
        var output = Path.Combine(_root, "out");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _root,
        };
        foreach (var arg in new[] { "publish", "src/Host.cs/Host.csproj", "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true", "-nologo", "-o", output })
            info.ArgumentList.Add(arg);
        // The test host's MSBuild settings would point the child build at the test run's own MSBuild node.
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToArray())
            info.Environment.Remove(name);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(PublishTimeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            _failure = $"dotnet publish did not finish in {PublishTimeout}";
            return;
        }
        var binary = Path.Combine(output, "lb");
        if (process.ExitCode == 0 && File.Exists(binary))
            _binary = binary;
        else
            _failure = $"exit code {process.ExitCode}\n{Tail(await stdout)}\n{Tail(await stderr)}";
    }

    public Task DisposeAsync()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>What the publish reads: the three projects, the accessor marker, the central props; no bin or obj.</summary>
    private void CopySources()
    {
        var repository = LbProgram.RepositoryRoot;
        foreach (var file in new[] { "Directory.Build.props", "Directory.Packages.props", "NuGet.config", "nuget.config", "global.json" })
            if (File.Exists(Path.Combine(repository, file)))
                File.Copy(Path.Combine(repository, file), Path.Combine(Directory.CreateDirectory(_root).FullName, file));
        foreach (var folder in new[] { "src", Path.Combine("bench", "aot") })
            CopyTree(Path.Combine(repository, folder), Path.Combine(_root, folder));
    }

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var folder in Directory.GetDirectories(from))
            if (Path.GetFileName(folder) is not ("bin" or "obj"))
                CopyTree(folder, Path.Combine(to, Path.GetFileName(folder)));
    }

    private static string Tail(string text) => text.Length <= 4000 ? text : text[^4000..];
}

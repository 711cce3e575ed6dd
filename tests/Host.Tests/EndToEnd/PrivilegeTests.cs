using System.Diagnostics;
using Lb.Host.Tests.Support;
using Lb.Rules;
using Lb.Tests;
using Xunit;
using Xunit.Abstractions;

namespace Lb.Host.Tests.EndToEnd;

/// <summary>
/// Issue 8, least privilege: samples/systemd/lb.service grants exactly what lb documents it needs, systemd accepts the
/// unit, and lb started as a non-root user without a capability its config needs says which one and exits 1 instead
/// of failing with a stack trace. (The non-root pair serving and failing over is Vrrp.Tests' PrivilegeFailoverTests.)
/// </summary>
public sealed class PrivilegeTests(ITestOutputHelper output)
{
    static string UnitPath => Path.Combine(LbProgram.RepositoryRoot, "samples", "systemd", "lb.service");
    static SystemdUnit Unit => SystemdUnit.Read(UnitPath);

    [Fact]
    public void The_systemd_unit_grants_exactly_the_capabilities_lb_documents_and_nothing_else()
    {
        var documented = Privileges.All.Select(Privileges.Name).Order().ToList();
        Assert.Equal(documented, Unit.Words("AmbientCapabilities").Order().ToList());
        Assert.Equal(documented, Unit.Words("CapabilityBoundingSet").Order().ToList());
        Assert.Equal("yes", Unit.Value("NoNewPrivileges"));
    }

    [Fact]
    public void The_systemd_unit_runs_as_a_dedicated_user_on_a_read_only_filesystem_except_cache_and_logs()
    {
        var unit = Unit;
        Assert.Equal("lb", unit.Value("User"));
        Assert.Equal("lb", unit.Value("Group"));
        Assert.Equal("strict", unit.Value("ProtectSystem"));
        Assert.Equal("yes", unit.Value("ProtectHome"));
        Assert.Equal("yes", unit.Value("PrivateTmp"));
        // Writable: only the folders systemd creates for User= (CacheDirectory=lb → /var/cache/lb, LogsDirectory=lb
        // → /var/log/lb), named again in ReadWritePaths so the unit says it in one place.
        Assert.Equal(["lb"], unit.Words("CacheDirectory"));
        Assert.Equal(["lb"], unit.Words("LogsDirectory"));
        Assert.Equal(["/var/cache/lb", "/var/log/lb"], unit.Words("ReadWritePaths").Order().ToList());
        Assert.Contains("lb run -c /etc/lb/lb.toml", unit.Value("ExecStart"));
        // The sysusers and tmpfiles snippets create that user and keep config and keys root:lb 0640.
        var sysusers = File.ReadAllText(Path.Combine(LbProgram.RepositoryRoot, "samples", "systemd", "lb.sysusers.conf"));
        Assert.Contains("u lb - ", sysusers);
        var tmpfiles = File.ReadAllText(Path.Combine(LbProgram.RepositoryRoot, "samples", "systemd", "lb.tmpfiles.conf"));
        Assert.Contains("z /etc/lb/tls/lb.key   0640 root lb -", tmpfiles);
    }

    [SkippableFact]
    public void Systemd_analyze_verify_accepts_the_unit()
    {
        Skip.If(Requires.SystemdAnalyze() is not null, Requires.SystemdAnalyze());
        // verify checks that ExecStart's program exists: point it at the built apphost, in a copy of the unit.
        var apphost = Path.Combine(Path.GetDirectoryName(HostLbDll)!, "lb");
        Assert.True(File.Exists(apphost), $"no apphost at {apphost}");
        var dir = Directory.CreateTempSubdirectory("lb-unit-").FullName;
        try
        {
            var copy = Path.Combine(dir, "lb.service");
            File.WriteAllText(copy, File.ReadAllText(UnitPath).Replace("/opt/lb/lb ", apphost + " "));
            var (code, text) = Run("systemd-analyze", ["verify", copy]);
            output.WriteLine($"systemd-analyze verify: exit {code}\n{text}");
            Assert.Equal(0, code);
            Assert.DoesNotContain("lb.service", text); // no warning about the unit at all
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [SkippableTheory]
    [InlineData("[listen]\nhttp = \"127.0.0.1:80\"\nplain_http = \"proxy\"\n",
        new[] { "missing capability CAP_NET_BIND_SERVICE: listen.http binds port 80" })]
    [InlineData("[listen]\nhttp = \"127.0.0.1:18080\"\nplain_http = \"proxy\"\n\n[vrrp]\ninterface = \"lo\"\nvirtual_router_id = 51\npriority = 100\nvirtual_ips = [\"192.0.2.100/24\"]\n",
        new[] { "missing capability CAP_NET_RAW: vrrp opens a raw IP socket", "missing capability CAP_NET_ADMIN: vrrp.virtual_ips adds and removes the VIP" })]
    public void As_a_user_without_capabilities_lb_run_names_each_missing_one_and_exits_1_without_a_stack_trace(string listen, string[] expected)
    {
        Skip.If(UnprivilegedLb.Status(Environment.ProcessId).Uid != 0, "needs root to start lb as another user (CI runs as root)");
        using var user = new UnprivilegedLb(HostLbDll, unit: null);
        var config = user.WriteFile("lb.toml", "[node]\nname = \"lb1\"\n\n" + listen +
            "\n[log]\naccess = \"off\"\n\n[apps.app1]\nservers = [ { name = \"app1_1\", address = \"127.0.0.1:9\" } ]\n");
        var (code, text) = Run(user.Command(Dotnet, ["run", "-c", config]));
        output.WriteLine($"exit {code}\n{text}");
        Assert.Equal(1, code);
        foreach (var line in expected) Assert.Contains(line, text);
        Assert.Equal(expected.Length, text.Split('\n').Count(l => l.Contains("missing capability")));
        Assert.Contains("samples/systemd/lb.service", text);
        Assert.DoesNotContain("Exception", text);
        Assert.DoesNotContain("   at ", text);
    }

    /// <summary>The Host project's own lb.dll (its folder holds only lb, unlike the test folder).</summary>
    static string HostLbDll => Path.Combine(LbProgram.RepositoryRoot, "src", "Host.cs", "bin",
#if DEBUG
        "Debug",
#else
        "Release",
#endif
        "net10.0", "lb.dll");

    static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p ? p : "dotnet";

    static (int Code, string Text) Run(IReadOnlyList<string> command) => Run(command[0], command.Skip(1));

    /// <summary>Runs a program to its end (bounded at 60 s); stdout and stderr together.</summary>
    static (int Code, string Text) Run(string program, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            p.Kill();
            Assert.Fail($"{program} did not exit within 60 s");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}

using System.Diagnostics;
using System.Globalization;

namespace Lb.Tests;

/// <summary>
/// The <c>[Service]</c> settings of a systemd unit file: key → values, in file order (a key may repeat; a
/// space-separated value such as <c>AmbientCapabilities=</c> is split). Comments and other sections are skipped.
/// </summary>
public sealed class SystemdUnit
{
    readonly List<(string Key, string Value)> settings;

    SystemdUnit(List<(string, string)> settings) => this.settings = settings;

    public static SystemdUnit Read(string path)
    {
        var settings = new List<(string, string)>();
        string section = "";
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';') continue;
            if (line.StartsWith('[')) { section = line; continue; }
            if (section != "[Service]") continue;
            int eq = line.IndexOf('=');
            if (eq > 0) settings.Add((line[..eq].Trim(), line[(eq + 1)..].Trim()));
        }
        return new SystemdUnit(settings);
    }

    public string? Value(string key) => settings.LastOrDefault(s => s.Key == key).Value;

    public IReadOnlyList<string> Words(string key) =>
        settings.Where(s => s.Key == key).SelectMany(s => s.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();

    /// <summary>The unit's capability names as setpriv spells them: "CAP_NET_RAW" → "net_raw".</summary>
    public static string SetprivName(string capability) => capability.ToLowerInvariant().Replace("cap_", "");
}

/// <summary>
/// Runs the built lb as a dedicated non-root user (created with useradd if absent) through setpriv, with the
/// process rights a systemd unit gives it: <c>User=</c>, <c>AmbientCapabilities=</c>, <c>CapabilityBoundingSet=</c>,
/// <c>NoNewPrivileges=</c>; and in a mount namespace of its own where, as with <c>ProtectSystem=strict</c>,
/// <c>ReadWritePaths=</c> and <c>PrivateTmp=</c>, the whole filesystem is read-only except <see cref="Home"/> (its
/// cache and log folder) and a private /tmp. lb's build output is copied into a root-owned folder the user can read
/// but not change (the checkout may sit under a folder it cannot enter, such as /root); config files go to a folder
/// only the user can read, as private keys and password hashes must. Dispose deletes both. Needs root.
/// </summary>
public sealed class UnprivilegedLb : IDisposable
{
    public const string User = "lbtest";
    readonly string root, privateTmp;

    /// <summary>
    /// In a new mount namespace: HOME and a private /tmp stay writable, / becomes read-only, the working folder is /
    /// (systemd's default), then exec the rest: the PID stays lb's.
    /// </summary>
    const string ReadOnlySystem =
        "set -e; home=$1; tmp=$2; shift 2; mount --bind \"$home\" \"$home\"; mount --bind \"$tmp\" /tmp; " +
        "mount -o remount,bind,ro /; cd /; exec \"$@\"";

    /// <summary>Where lb.dll (or a NativeAOT lb) is, in the copy the user can read.</summary>
    public string LbDll { get; }
    /// <summary>The user's private folder (mode 0700, owned by it): configs, cache, access log.</summary>
    public string Home { get; }
    public int Uid { get; }
    public IReadOnlyList<string> Capabilities { get; }
    readonly IReadOnlyList<string> bounding;
    readonly bool noNewPrivileges;

    /// <param name="lbDll">The built lb.dll, or a NativeAOT lb; its whole folder is copied.</param>
    /// <param name="unit">The unit whose capability sets to apply; null: no capability at all.</param>
    public UnprivilegedLb(string lbDll, SystemdUnit? unit)
    {
        Uid = EnsureUser();
        Capabilities = unit?.Words("AmbientCapabilities") ?? [];
        bounding = unit?.Words("CapabilityBoundingSet") ?? [];
        noNewPrivileges = unit?.Value("NoNewPrivileges") == "yes";
        // Under /var/tmp, not /tmp: the private /tmp mounted over /tmp would hide it.
        root = Path.Combine("/var/tmp", $"lb-unprivileged-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        Do("chmod", "0755", root);
        privateTmp = Path.Combine(root, "tmp");
        Directory.CreateDirectory(privateTmp);
        Do("chmod", "1777", privateTmp);
        var app = Path.Combine(root, "app");
        // A root-owned copy the user can read and run but not change, as /opt/lb in the unit's README.
        Do("cp", "-r", Path.GetDirectoryName(lbDll)!, app);
        Do("chmod", "-R", "u=rwX,go=rX", app);
        LbDll = Path.Combine(app, Path.GetFileName(lbDll));
        Home = Path.Combine(root, "home");
        Directory.CreateDirectory(Home);
        Do("chown", $"{User}:{User}", Home);
        Do("chmod", "0700", Home);
    }

    /// <summary>Writes <paramref name="text"/> to HOME/NAME, mode 0600, owned by the user.</summary>
    public string WriteFile(string name, string text)
    {
        var path = Path.Combine(Home, name);
        File.WriteAllText(path, text);
        Do("chmod", "0600", path);
        Do("chown", $"{User}:{User}", path);
        return path;
    }

    /// <summary>
    /// <c>unshare ... sh -c READ-ONLY-SYSTEM ... setpriv ... -- DOTNET lb.dll ARGS</c> (<c>-- lb ARGS</c> for a
    /// NativeAOT lb), each exec'ing the next: the read-only filesystem, then the user's uid, gid and groups; with a
    /// unit, its capabilities in the inheritable and ambient sets (so they are effective in lb and passed on to
    /// `ip`), its bounding set and no_new_privs; without one, every set empty.
    /// </summary>
    public IReadOnlyList<string> Command(string dotnet, IEnumerable<string> lbArgs)
    {
        string Set(IEnumerable<string> caps) => string.Join(",", new[] { "-all" }.Concat(caps.Select(c => "+" + SystemdUnit.SetprivName(c))));
        var args = new List<string>
        {
            "unshare", "--mount", "--propagation", "private", "--", "sh", "-c", ReadOnlySystem, "read-only-system", Home, privateTmp,
            "setpriv", $"--reuid={User}", $"--regid={User}", "--init-groups",
            $"--inh-caps={Set(Capabilities)}", $"--ambient-caps={Set(Capabilities)}", $"--bounding-set={Set(bounding)}",
        };
        if (noNewPrivileges) args.Add("--no-new-privs");
        // A NativeAOT lb (no .dll) runs by itself.
        args.AddRange(LbDll.EndsWith(".dll", StringComparison.Ordinal) ? ["--", dotnet, LbDll] : ["--", LbDll]);
        args.AddRange(lbArgs);
        return args;
    }

    /// <summary>
    /// Tries to create <paramref name="path"/> as the user inside the mount namespace of process <paramref name="pid"/>;
    /// returns the error text, empty when it could ("Read-only file system" shows the filesystem is protected).
    /// </summary>
    public static string TryCreateAsUserIn(int pid, string path)
    {
        var r = Run("nsenter", "-t", pid.ToString(CultureInfo.InvariantCulture), "-m", "setpriv", $"--reuid={User}", $"--regid={User}",
            "--init-groups", "touch", path);
        return r.ExitCode == 0 ? "" : r.Error.Trim();
    }

    /// <summary>The real uid and the CapEff mask of a running process, from /proc/PID/status.</summary>
    public static (int Uid, ulong CapEff) Status(int pid)
    {
        var lines = File.ReadAllLines($"/proc/{pid}/status");
        string Field(string name) => lines.First(l => l.StartsWith(name + ":", StringComparison.Ordinal))[(name.Length + 1)..].Trim();
        return (int.Parse(Field("Uid").Split('\t')[0], CultureInfo.InvariantCulture),
            ulong.Parse(Field("CapEff"), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
    }

    /// <summary>capabilities(7) bit of the names lb's unit uses.</summary>
    public static ulong Mask(IEnumerable<string> capabilities) => capabilities.Aggregate(0UL, (mask, c) => mask | 1UL << c switch
    {
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_ADMIN" => 12,
        "CAP_NET_RAW" => 13,
        _ => throw new ArgumentException($"unexpected capability {c}"),
    });

    static int EnsureUser()
    {
        if (Run("id", "-u", User) is { ExitCode: 0 } found) return int.Parse(found.Output.Trim(), CultureInfo.InvariantCulture);
        // Another test assembly may create it at the same moment: whoever loses reads the winner's.
        Run("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", User);
        var made = Run("id", "-u", User);
        if (made.ExitCode != 0) throw new InvalidOperationException($"could not create user {User}: {made.Error}");
        return int.Parse(made.Output.Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>Runs a setup command; throws with its error output when it fails.</summary>
    static void Do(string program, params string[] args)
    {
        var r = Run(program, args);
        if (r.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)}: {r.Error.Trim()}");
    }

    static (int ExitCode, string Output, string Error) Run(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(30))) { p.Kill(); throw new TimeoutException($"{program} did not finish"); }
        return (p.ExitCode, output.Result, error.Result);
    }

    public void Dispose()
    {
        try { Directory.Delete(root, recursive: true); }
        catch (IOException) { }
    }
}

using System.Runtime.InteropServices;
using Lb.Host.Forwarding;
using Lb.Host.Serving;
using Lb.Host.Stats;
using Lb.Rules;

namespace Lb.Host.Configuration;

/// <summary>
/// Zero-downtime reload: on SIGHUP (and on a change of the config file with `[node] reload_on_change`) the
/// config file is read again and, if it loads and <see cref="Reload.Plan"/> finds nothing that needs a restart,
/// put in force whole: a new forwarding generation and certificate, swapped with one reference write each.
/// Otherwise nothing changes and the log says why. A change of a TLS file reloads the certificate alone.
/// </summary>
public sealed class Reloader : IDisposable
{
    /// <summary>Editors and cert tools write a file in several steps (truncate, write, rename): wait for quiet.</summary>
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(400);

    private readonly string _path;
    private readonly ForwardingState _state;
    private readonly CertificateStore? _certificates;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly Timer _configChanged;
    private readonly Timer _tlsChanged;
    private readonly List<FileSystemWatcher> _watchers = [];
    private PosixSignalRegistration? _sighup;
    private bool _disposed;

    private readonly NodeStatus? _node;

    /// <param name="node">Where the stats page and metrics read reload outcomes from; null: not shown.</param>
    public Reloader(string path, ForwardingState state, CertificateStore? certificates, ILogger logger, NodeStatus? node = null)
    {
        _node = node;
        _path = Path.GetFullPath(path);
        _state = state;
        _certificates = certificates;
        _logger = logger;
        _configChanged = new Timer(_ => Guarded(() => Reload("config file changed")));
        _tlsChanged = new Timer(_ => Guarded(() => ReloadCertificate("TLS file changed")));
    }

    /// <summary>The last outcome, one line, for stats ("none yet" before the first).</summary>
    public string LastOutcome { get; private set; } = "none yet";

    /// <summary>Listens for SIGHUP and starts watching the files the running config names.</summary>
    public void Start()
    {
        // Started under nohup (or by a shell that ignores SIGHUP), the signal arrives ignored, and .NET then
        // leaves it ignored; lb's reload signal must work however it was started, so take it back first.
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
            signal(Sighup, IntPtr.Zero);
        // Cancel: SIGHUP's default action would end the process.
        _sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            ThreadPool.QueueUserWorkItem(_ => Guarded(() => Reload("SIGHUP")));
        });
        Watch(_state.Config);
    }

    /// <summary>
    /// Reads the config file and applies it whole, or refuses it whole and logs why. Returns whether it was
    /// applied. Reloads run one at a time, in the order they were asked for.
    /// </summary>
    public bool Reload(string reason)
    {
        lock (_gate)
        {
            if (_disposed)
                return false;
            var load = ConfigFile.Load(_path);
            if (!load.IsValid)
                return Refuse(reason, $"{load.Errors.Length} error(s) in {_path}", load.Errors.Select(e => $"{_path}:{e}"));
            var running = _state.Current;
            var plan = Rules.Reload.Plan(running.Config, load.Config);
            if (!plan.CanApply)
                return Refuse(reason, "a change needs a restart", plan.Refused);
            var certificate = load.Config.Tls is { } tls && _certificates is not null ? CertificateStore.Load(tls.Value) : (null, "");
            if (load.Config.Tls is not null && _certificates is not null && certificate.Context is null)
                return Refuse(reason, "the new certificate cannot be used", [certificate.Error]);
            var next = running.Next(load.Config, plan);
            _state.Swap(next);
            if (certificate.Context is not null)
                _certificates!.Swap(certificate.Context);
            Watch(load.Config);
            LastOutcome = $"#{next.Number} applied ({reason}): {Rules.Reload.Summary(plan)}; {ServerSummary(plan)}";
            _node?.RecordReload(true, LastOutcome, DateTimeOffset.UtcNow);
            // Warning: the default console level, so every reload shows in the journal.
            _logger.LogWarning("reload {Outcome}", LastOutcome);
            return true;
        }
    }

    /// <summary>Loads the running config's certificate files again; a broken one is refused and the old one kept.</summary>
    public bool ReloadCertificate(string reason)
    {
        lock (_gate)
        {
            if (_disposed || _state.Config.Tls is not { } tls || _certificates is null)
                return false;
            var (context, error) = CertificateStore.Load(tls.Value);
            if (context is null)
            {
                _logger.LogError("certificate reload refused ({Reason}); the running certificate stays: {Error}", reason, error);
                return false;
            }
            _certificates.Swap(context);
            _logger.LogWarning("certificate reloaded ({Reason}): {Subject}, valid until {NotAfter:u}", reason, context.TargetCertificate.Subject, context.TargetCertificate.NotAfter.ToUniversalTime());
            return true;
        }
    }

    /// <summary>
    /// Runs a reload from a timer, signal or thread-pool callback, where an exception would end the process: a
    /// reload that fails unexpectedly is logged and the running config stays (nothing is swapped before the end).
    /// </summary>
    private void Guarded(Func<bool> reload)
    {
        try
        {
            reload();
        }
        catch (Exception e)
        {
            _logger.LogError(e, "reload failed; the running config stays");
        }
    }

    private bool Refuse(string reason, string why, IEnumerable<string> details)
    {
        foreach (var detail in details)
            _logger.LogError("{Detail}", detail);
        LastOutcome = $"refused ({reason}): {why}; the running config stays";
        _node?.RecordReload(false, LastOutcome, DateTimeOffset.UtcNow);
        _logger.LogError("reload {Outcome}", LastOutcome);
        return false;
    }

    private static string ServerSummary(ReloadPlan plan)
    {
        var servers = plan.Apps.SelectMany(a => a.Servers).ToArray();
        var carried = servers.Count(s => s.IsCarried);
        return $"servers: {carried} carried over, {servers.Length - carried} new";
    }

    /// <summary>
    /// Watches the TLS files always (a renewed certificate is picked up), and the config file when
    /// `reload_on_change` is on. Each event restarts its debounce timer.
    /// </summary>
    private void Watch(LbConfig config)
    {
        foreach (var watcher in _watchers)
            watcher.Dispose();
        _watchers.Clear();
        if (config.Node.ReloadOnChange)
            AddWatcher(_path, _configChanged);
        if (config.Tls is { } tls)
        {
            var files = new List<string> { tls.Value.Cert, tls.Value.Key };
            if (tls.Value.Chain is { } chain)
                files.Add(chain.Value);
            foreach (var file in files.Select(Path.GetFullPath).Distinct())
                AddWatcher(file, _tlsChanged);
        }
    }

    /// <summary>
    /// A folder lb may not list (a 0700 certificate folder under `User=lb`) or the inotify limit must not stop lb
    /// or a reload: the file is then simply not watched, and SIGHUP still reloads it.
    /// </summary>
    private void AddWatcher(string file, Timer debounce)
    {
        try
        {
            _watchers.Add(WatchFile(file, debounce));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or PlatformNotSupportedException)
        {
            _logger.LogWarning("not watching {File} ({Error}); SIGHUP still reloads it", file, e.Message);
        }
    }

    private static FileSystemWatcher WatchFile(string file, Timer debounce)
    {
        // The folder, filtered by name: editors and cert tools often replace the file by a rename.
        var watcher = new FileSystemWatcher(Path.GetDirectoryName(file)!, Path.GetFileName(file))
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        watcher.Changed += (_, _) => Restart(debounce);
        watcher.Created += (_, _) => Restart(debounce);
        watcher.Renamed += (_, _) => Restart(debounce);
        try
        {
            watcher.EnableRaisingEvents = true;
        }
        catch
        {
            watcher.Dispose();
            throw;
        }
        return watcher;
    }

    private static void Restart(Timer debounce)
    {
        try
        {
            debounce.Change(Debounce, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // An event that arrived while lb stops.
        }
    }

    private const int Sighup = 1;

    /// <summary>signal(2); <see cref="IntPtr.Zero"/> is SIG_DFL.</summary>
    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr signal(int signum, IntPtr handler);

    public void Dispose()
    {
        _sighup?.Dispose();
        lock (_gate)
        {
            _disposed = true;
            foreach (var watcher in _watchers)
                watcher.Dispose();
            _watchers.Clear();
        }
        _configChanged.Dispose();
        _tlsChanged.Dispose();
    }
}

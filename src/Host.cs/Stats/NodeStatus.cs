namespace Lb.Host.Stats;

/// <summary>
/// What the stats page says about this node besides its servers: when it started, its VRRP state (set by
/// whoever runs VRRP; null when VRRP is not configured, shown as "n/a"), the latest admin actions and reloads.
/// </summary>
public sealed class NodeStatus
{
    private const int KeptActions = 20;
    private readonly LinkedList<string> _actions = new();
    private Func<string?> _vrrpState = () => null;

    public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;

    /// <summary>Reads the VRRP state (MASTER, BACKUP, FAULT, ...) at each page view; null: not configured.</summary>
    public Func<string?> VrrpState
    {
        get => Volatile.Read(ref _vrrpState);
        set => Volatile.Write(ref _vrrpState, value);
    }

    private static readonly IReadOnlyDictionary<string, long> NoDrops = new Dictionary<string, long>();
    private Func<IReadOnlyDictionary<string, long>> _vrrpDrops = () => NoDrops;

    /// <summary>VRRP packets the receive checks dropped since start, by reason (RFC 5798 §7.1); empty without VRRP.</summary>
    public Func<IReadOnlyDictionary<string, long>> VrrpDrops
    {
        get => Volatile.Read(ref _vrrpDrops);
        set => Volatile.Write(ref _vrrpDrops, value);
    }

    private long _reloadsApplied;
    private long _reloadsRefused;

    /// <summary>Config reloads put in force since start.</summary>
    public long ReloadsApplied => Interlocked.Read(ref _reloadsApplied);

    /// <summary>Config reloads refused since start (the running config stayed).</summary>
    public long ReloadsRefused => Interlocked.Read(ref _reloadsRefused);

    /// <summary>Counts a reload's outcome and lists it with the admin actions, so the page shows the last ones.</summary>
    public void RecordReload(bool applied, string outcome, DateTimeOffset now)
    {
        Interlocked.Increment(ref applied ? ref _reloadsApplied : ref _reloadsRefused);
        RecordAction($"{now.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z reload {outcome}");
    }

    public void RecordAction(string line)
    {
        lock (_actions)
        {
            _actions.AddFirst(line);
            while (_actions.Count > KeptActions)
                _actions.RemoveLast();
        }
    }

    /// <summary>Newest first.</summary>
    public string[] RecentActions()
    {
        lock (_actions)
            return _actions.ToArray();
    }
}

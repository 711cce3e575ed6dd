namespace Lb.Host.Stats;

/// <summary>
/// What the stats page says about this node besides its servers: when it started, its VRRP state (set by
/// whoever runs VRRP; null when VRRP is not configured, shown as "n/a") and the latest admin actions.
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

using Lb.Rules;

namespace Lb.Host.Forwarding;

/// <summary>The runtime state of one backend server: health, active requests, its connection limit, counters.</summary>
public sealed class ServerRuntime
{
    private HealthState _health;
    private int _active;
    private readonly SemaphoreSlim? _slots;

    public ServerRuntime(AppConfig app, int index)
    {
        Config = app.Servers[index];
        Index = index;
        AppName = app.Name;
        // HAProxy's default: a server starts up and the first failed check takes it down (Health.initial).
        _health = Lb.Rules.Health.Initial(app.Health.Thresholds, true);
        if (Config.MaxConn is { } max)
            _slots = new SemaphoreSlim(max.Value, max.Value);
    }

    public ServerConfig Config { get; }
    public int Index { get; }
    public string AppName { get; }
    public string Name => Config.Name;
    public HealthState Health => Volatile.Read(ref _health);
    public bool IsUp => Rules.Health.IsUp(Health);
    public int Active => Volatile.Read(ref _active);
    public DateTimeOffset LastChange { get; private set; } = DateTimeOffset.UtcNow;
    public string LastCheck { get; private set; } = "none yet";

    /// <summary>Applies one check result through the pure rise/fall counter; returns the transition, if any.</summary>
    public HealthTransition? RecordCheck(bool success, string detail, DateTimeOffset now)
    {
        var (next, transition) = Rules.Health.Step(Health, success);
        Volatile.Write(ref _health, next);
        LastCheck = detail;
        if (transition is null)
            return null;
        LastChange = now;
        return transition.Value;
    }

    /// <summary>Waits for a connection slot (`maxconn`) up to the queue timeout; false when none came.</summary>
    public async ValueTask<bool> EnterAsync(TimeSpan queueTimeout, CancellationToken cancel)
    {
        if (_slots is not null && !await _slots.WaitAsync(queueTimeout, cancel))
            return false;
        Interlocked.Increment(ref _active);
        return true;
    }

    public void Leave()
    {
        Interlocked.Decrement(ref _active);
        _slots?.Release();
    }
}

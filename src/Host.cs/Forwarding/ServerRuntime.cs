using Lb.Host.Stats;
using Lb.Rules;

namespace Lb.Host.Forwarding;

/// <summary>
/// The runtime state of one backend server that outlives a reload: health, admin state, active requests,
/// its connection slots and counters. A server that stays the same across a reload (<see cref="Reload.Plan"/>)
/// keeps this one object, so requests still in flight on the old config and new ones count in one place.
/// </summary>
public sealed class ServerState
{
    internal HealthState Health;
    internal int Active;
    internal AdminState Admin = AdminState.Ready;
    internal DateTimeOffset LastChange = DateTimeOffset.UtcNow;
    internal string LastCheck = "none yet";

    internal ServerState(HealthState health, int? maxConn, ServerCounters counters)
    {
        Health = health;
        Counters = counters;
        MaxConn = maxConn;
        if (maxConn is { } max)
            Slots = new SemaphoreSlim(max, max);
    }

    /// <summary>
    /// This state under the server's new config: the same object unless its `maxconn` changed, as the slots
    /// are sized by it. The health is written only when the new check settings move it, so a check result
    /// recorded meanwhile is not overwritten with the same old value.
    /// </summary>
    internal ServerState For(int? maxConn, HealthState health)
    {
        var state = maxConn == MaxConn ? this : new ServerState(health, maxConn, Counters) { Admin = Admin, LastChange = LastChange, LastCheck = LastCheck };
        if (!Equals(Volatile.Read(ref state.Health), health))
            Volatile.Write(ref state.Health, health);
        return state;
    }

    internal int? MaxConn { get; }
    internal SemaphoreSlim? Slots { get; }
    internal ServerCounters Counters { get; }
}

/// <summary>One backend server in one config generation: its config and index, over its <see cref="ServerState"/>.</summary>
public sealed class ServerRuntime
{
    private readonly ServerState _state;

    /// <param name="pinnedWindow">How long a client counts as pinned after its last request (`[stats] pinned_window`).</param>
    public ServerRuntime(AppConfig app, int index, TimeSpan? pinnedWindow = null)
        // HAProxy's default: a server starts up and the first failed check takes it down (Health.initial).
        : this(app, index, new ServerState(Lb.Rules.Health.Initial(app.Health.Thresholds, true), MaxConnOf(app, index), new ServerCounters(pinnedWindow ?? Keywords.Stats.PinnedWindow.Default)))
    {
    }

    /// <summary>The same server after a reload: <paramref name="previous"/>'s state, its health under the app's new check settings.</summary>
    public ServerRuntime(AppConfig app, int index, ServerRuntime previous)
        : this(app, index, previous._state.For(MaxConnOf(app, index), Reload.CarriedHealth(previous.Health, app.Health)))
    {
    }

    private ServerRuntime(AppConfig app, int index, ServerState state)
    {
        Config = app.Servers[index];
        Index = index;
        AppName = app.Name;
        _state = state;
        DestinationPrefix = $"http://{Config.Address}";
    }

    private static int? MaxConnOf(AppConfig app, int index) => app.Servers[index].MaxConn is { } max ? max.Value : null;

    public ServerConfig Config { get; }
    public int Index { get; }
    public string AppName { get; }

    /// <summary>`http://host:port`, what YARP's forwarder puts before the backend target (built once, not per request).</summary>
    public string DestinationPrefix { get; }
    public string Name => Config.Name;

    /// <summary>The state that carries over a reload; the same object for the same server in every generation.</summary>
    public ServerState State => _state;
    public HealthState Health => Volatile.Read(ref _state.Health);
    public bool IsUp => Rules.Health.IsUp(Health);
    public int Active => Volatile.Read(ref _state.Active);
    public DateTimeOffset LastChange => _state.LastChange;

    /// <summary>Sessions, bytes, responses, persistence and check counters for the stats page and metrics.</summary>
    public ServerCounters Counters => _state.Counters;

    /// <summary>What an operator set from the stats page: Ready, Drain (with an optional deadline) or Maint.</summary>
    public AdminState Admin => Volatile.Read(ref _state.Admin);

    /// <summary>UP, DOWN, DRAIN or MAINT, as the stats page shows it (<see cref="Lb.Rules.Admin.Status"/>).</summary>
    public ServerStatus Status => Lb.Rules.Admin.Status(IsUp, Admin);

    /// <summary>Whether a client without a valid cookie may be sent here (health up and admin Ready).</summary>
    public bool UsableForNew => Lb.Rules.Admin.UsableForNew(IsUp, Admin);

    /// <summary>A server at its `maxconn` takes no new client while another has a free slot (HAProxy's fwrr skips it).</summary>
    public bool HasFreeSlot => _state.Slots is null || _state.Slots.CurrentCount > 0;

    /// <summary>Whether a client pinned here by its cookie stays (not in MAINT, drain deadline not passed).</summary>
    public bool UsableForPinned(DateTimeOffset now) => Lb.Rules.Admin.UsableForPinned(IsUp, Admin, now);

    /// <summary>Sets the admin state; takes effect on the next request.</summary>
    public void SetAdmin(AdminState state, DateTimeOffset now)
    {
        Volatile.Write(ref _state.Admin, state);
        _state.LastChange = now;
    }
    public string LastCheck => _state.LastCheck;

    /// <summary>Applies one check result through the pure rise/fall counter; returns the transition, if any.</summary>
    public HealthTransition? RecordCheck(bool success, string detail, DateTimeOffset now) =>
        RecordCheck(success, detail, now, null, TimeSpan.Zero);

    /// <summary>As above, with the answered status (if any) and how long the check took, for the stats page.</summary>
    public HealthTransition? RecordCheck(bool success, string detail, DateTimeOffset now, int? status, TimeSpan duration)
    {
        Counters.Check(new CheckResult(success, status is { } s ? Microsoft.FSharp.Core.FSharpOption<int>.Some(s) : null, duration, detail, now));
        var (next, transition) = Rules.Health.Step(Health, success);
        Volatile.Write(ref _state.Health, next);
        _state.LastCheck = detail;
        if (transition is null)
            return null;
        _state.LastChange = now;
        return transition.Value;
    }

    /// <summary>Waits for a connection slot (`maxconn`) up to the queue timeout; false when none came.</summary>
    public async ValueTask<bool> EnterAsync(TimeSpan queueTimeout, CancellationToken cancel)
    {
        var slots = _state.Slots;
        if (slots is not null && !slots.Wait(0))
        {
            // No free slot: the request waits in this server's queue (HAProxy's per-server `qcur`).
            Counters.QueueEntered();
            try
            {
                if (!await slots.WaitAsync(queueTimeout, cancel))
                    return false;
            }
            finally
            {
                Counters.QueueLeft();
            }
        }
        Counters.SessionStarted(Interlocked.Increment(ref _state.Active));
        return true;
    }

    public void Leave()
    {
        Interlocked.Decrement(ref _state.Active);
        _state.Slots?.Release();
    }
}

using System.Runtime.CompilerServices;
using Lb.Host.Stats;
using Lb.Rules;

namespace Lb.Host.Forwarding;

/// <summary>The runtime state of one app: its servers and its balancing state. Choices are made by Rules.</summary>
public sealed class AppRuntime
{
    private RoundRobinState _roundRobin = Balancing.RoundRobinInitial;

    /// <summary>
    /// The round robin of each server group a rule pins to: a group keeps its own turn, as a change of the
    /// available set starts the round robin over (<see cref="Balancing.RoundRobin"/>), and pinned and unpinned
    /// requests interleaved would otherwise send every unpinned one to the first server.
    /// </summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, StrongBox<RoundRobinState>> _pinnedRoundRobins = new();
    private int _turn;

    /// <summary>The servers' weights, fixed by the config: built once here, not per request.</summary>
    private readonly int[] _weights;

    /// <param name="pinnedWindow">`[stats] pinned_window`, for the servers' pinned-client counts.</param>
    public AppRuntime(AppConfig config, TimeSpan? pinnedWindow = null)
        : this(config, config.Servers.Select((_, i) => new ServerRuntime(config, i, pinnedWindow)).ToArray(), new AppCounters())
    {
    }

    /// <summary>
    /// The app after a reload, as <paramref name="plan"/> says: carried servers keep <paramref name="previous"/>'s
    /// state, the others start fresh; the app's counters carry over. The balancer starts over, as its server set may differ.
    /// </summary>
    public AppRuntime(AppConfig config, TimeSpan? pinnedWindow, AppRuntime? previous, AppReload plan)
        : this(config, config.Servers.Select((_, i) => plan.Servers[i] is ServerOrigin.Carried carried && previous is not null
                ? new ServerRuntime(config, i, previous.Servers[carried.oldIndex])
                : new ServerRuntime(config, i, pinnedWindow)).ToArray(),
            previous?.Counters ?? new AppCounters())
    {
    }

    private AppRuntime(AppConfig config, ServerRuntime[] servers, AppCounters counters)
    {
        Config = config;
        Servers = servers;
        Counters = counters;
        _weights = SelectionModule.WeightsOf(config);
        if (Persistence.IsOn(config))
            _persistenceCookies = [CookiesOfServers(config, secure: false), CookiesOfServers(config, secure: true)];
    }

    /// <summary>
    /// Each server's Set-Cookie line, over http and over https: fixed by the config, so built once here rather
    /// than for every response that pins a client (<see cref="Persistence.SetCookieFor"/>).
    /// </summary>
    private readonly string[][]? _persistenceCookies;

    private static string[] CookiesOfServers(AppConfig config, bool secure) =>
        config.Servers.Select((_, i) => Persistence.SetCookieFor(config, i, secure)).ToArray();

    /// <summary>The Set-Cookie line that pins a client to a server; throws when the app's persistence is off.</summary>
    public string PersistenceCookie(int serverIndex, bool secure) =>
        (_persistenceCookies ?? throw new InvalidOperationException($"persistence is off for app '{Config.Name}'"))[secure ? 1 : 0][serverIndex];

    public AppConfig Config { get; }
    public ServerRuntime[] Servers { get; }

    /// <summary>Requests routed to the app, the ones no server could take, responses by class.</summary>
    public AppCounters Counters { get; }

    /// <summary>
    /// The first choice for a request (<see cref="SelectionModule.First"/>): the servers' state now, the balancer of the
    /// request's pin group, and the choice's new round robin stored by compare-and-swap (retried on a race).
    /// </summary>
    public SelectionStep SelectFirst(int[] pin, string[] cookieHeaders, bool redispatch)
    {
        ref var roundRobin = ref RoundRobinOf(pin);
        while (true)
        {
            var input = Input(pin, Volatile.Read(ref roundRobin), redispatch);
            var step = SelectionModule.First(input, cookieHeaders);
            if (ReferenceEquals(step.NextRoundRobin, input.RoundRobin)
                || ReferenceEquals(Interlocked.CompareExchange(ref roundRobin, step.NextRoundRobin, input.RoundRobin), input.RoundRobin))
                return step;
        }
    }

    /// <summary>The choice for a retry to another server (<see cref="SelectionModule.Retry"/>); it does not move the round robin.</summary>
    public SelectionStep SelectRetry(int[] pin, bool[] tried, int current, bool cookieInserted, bool redispatch) =>
        SelectionModule.Retry(Input(pin, Volatile.Read(ref RoundRobinOf(pin)), redispatch), tried, current, cookieInserted);

    private ref RoundRobinState RoundRobinOf(int[] pin) =>
        ref pin.Length == 0
            ? ref _roundRobin
            : ref _pinnedRoundRobins.GetOrAdd(string.Join(",", pin), _ => new StrongBox<RoundRobinState>(Balancing.RoundRobinInitial)).Value!;

    /// <summary>What the selection reads: each server's health, admin state, requests in flight and free slot, now.</summary>
    private SelectionInput Input(int[] pin, RoundRobinState roundRobin, bool redispatch)
    {
        var views = new ServerView[Servers.Length];
        for (var i = 0; i < views.Length; i++)
        {
            var server = Servers[i];
            views[i] = new ServerView(server.IsUp, server.Admin, server.Active, server.HasFreeSlot);
        }
        // The leastconn turn counts from 0, so a fresh lb's first choice is `lb explain`'s (Selection.Idle).
        var turn = Interlocked.Increment(ref _turn) - 1;
        return new SelectionInput(Config, pin, views, _weights, roundRobin, turn, Random.Shared.Next(), Random.Shared.Next(), redispatch, DateTimeOffset.UtcNow);
    }
}

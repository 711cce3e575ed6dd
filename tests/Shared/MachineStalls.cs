using System.Collections.Concurrent;
using System.Diagnostics;

namespace Lb.Tests;

/// <summary>
/// Freezes of this machine as one thread sees them: it asks for 5 ms sleeps and records every wake-up that came
/// 50 ms or more late. The CI machine is a shared VM whose vCPUs can be held still for most of a second (one full CI
/// run froze ~0.94 s at a SIGKILL, then again at the next two whole seconds): lb2's timers, lb1's death and the
/// client's timeouts all stood still together. A timing bound in a test is about lb, so the time the machine stood
/// still during the measured span is added to the bound, and printed.
/// </summary>
public static class MachineStalls
{
    const int SleepMs = 5, LateMs = 50;
    static readonly ConcurrentQueue<(long EndMs, long FrozenMs)> stalls = new();

    static MachineStalls()
    {
        var watch = new Thread(Watch) { IsBackground = true, Name = "machine-stall-watch", Priority = ThreadPriority.Highest };
        watch.Start();
    }

    /// <summary>Starts the watch (once per test process).</summary>
    public static void Start() { }

    public static long NowMs => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>
    /// <paramref name="bound"/> plus the time the machine stood still since <paramref name="fromMs"/>, which is
    /// written to <paramref name="output"/> when there was any.
    /// </summary>
    public static TimeSpan Extend(TimeSpan bound, long fromMs, Xunit.Abstractions.ITestOutputHelper output)
    {
        var frozen = FrozenBetween(fromMs, NowMs);
        if (frozen > TimeSpan.Zero)
            output.WriteLine($"the machine stood still {frozen.TotalMilliseconds:0} ms; bound {bound.TotalMilliseconds:0} ms + that");
        return bound + frozen;
    }

    static void Watch()
    {
        var clock = Stopwatch.StartNew();
        long last = clock.ElapsedMilliseconds;
        // Bounded: at most ~3 hours of 5 ms sleeps; a test process lives minutes.
        for (int i = 0; i < 2_000_000; i++)
        {
            Thread.Sleep(SleepMs);
            long now = clock.ElapsedMilliseconds, late = now - last - SleepMs;
            if (late >= LateMs) stalls.Enqueue((NowMs, late));
            last = now;
        }
    }

    /// <summary>How long the machine stood still between two Unix-ms instants (overlap of every recorded stall).</summary>
    public static TimeSpan FrozenBetween(long fromMs, long toMs) => TimeSpan.FromMilliseconds(stalls
        .Select(s => Math.Min(s.EndMs, toMs) - Math.Max(s.EndMs - s.FrozenMs, fromMs))
        .Where(overlap => overlap > 0)
        .Sum());
}

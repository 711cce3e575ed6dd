using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Xunit;

namespace Lb.Host.Tests.Support;

/// <summary>
/// A real `lb run -c FILE` process, its stdout and stderr collected line by line (the console log included),
/// signalled by its PID. Stopped (SIGTERM, then kill if it hangs) on dispose.
/// </summary>
public sealed class LbProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();

    private LbProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) _lines.Enqueue(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _lines.Enqueue(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>Starts lb on <paramref name="configPath"/> and waits for its start line.</summary>
    /// <param name="hupIgnored">Start it as `nohup` would: SIGHUP ignored, a disposition the process inherits.</param>
    /// <param name="nativeBinary">A NativeAOT lb to run instead of `dotnet lb.dll` (see NativeAotTests).</param>
    public static async Task<LbProcess> StartAsync(string configPath, bool hupIgnored = false, string? nativeBinary = null)
    {
        var info = LbProgram.StartInfo(["run", "-c", configPath], nativeBinary: nativeBinary);
        if (hupIgnored)
        {
            // sh ignores SIGHUP, then becomes `dotnet lb.dll ...` (same PID), which inherits the ignore.
            var args = info.ArgumentList.ToArray();
            info.FileName = "/bin/sh";
            info.ArgumentList.Clear();
            foreach (var arg in new[] { "-c", "trap '' HUP; exec \"$0\" \"$@\"", "dotnet" }.Concat(args))
                info.ArgumentList.Add(arg);
        }
        var lb = new LbProcess(Process.Start(info)!);
        try
        {
            await lb.WaitForLineAsync(l => l.StartsWith("lb ") && l.Contains("config OK"), TimeSpan.FromSeconds(60));
        }
        catch
        {
            await lb.DisposeAsync();
            throw;
        }
        return lb;
    }

    /// <summary>Starts lb on <paramref name="configPath"/> without waiting for anything.</summary>
    public static LbProcess Launch(string configPath) => new(Process.Start(LbProgram.StartInfo(["run", "-c", configPath]))!);

    /// <summary>Sends <paramref name="signal"/> (e.g. <see cref="LbProgram.Sigterm"/>) to this lb, by its PID.</summary>
    public void Signal(int signal) => LbProgram.Signal(_process, signal);

    /// <summary>Waits (bounded) for the process to exit; its exit code, or null if it is still running.</summary>
    public async Task<int?> WaitForExitAsync(TimeSpan timeout)
    {
        using var bound = new CancellationTokenSource(timeout);
        try { await _process.WaitForExitAsync(bound.Token); }
        catch (OperationCanceledException) { return null; }
        return _process.ExitCode;
    }

    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public IReadOnlyList<string> Lines => _lines.ToArray();
    public string Output => string.Join("\n", _lines);

    /// <summary>`kill -HUP PID`, as systemd's ExecReload does.</summary>
    public void Hup() => Assert.Equal(0, kill(_process.Id, Sighup));

    /// <summary>Waits for a line matching <paramref name="match"/> (counting lines already seen); fails with the output so far.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, int skip = 0)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (_lines.Skip(skip).FirstOrDefault(match) is { } line)
                return line;
            Assert.False(_process.HasExited, "lb exited:\n" + Output);
            await Task.Delay(20);
        }
        Assert.Fail($"no such line within {timeout}; lb said:\n{Output}");
        return "";
    }

    /// <summary>Sends SIGHUP and waits for the reload's outcome line (applied or refused); returns it.</summary>
    public async Task<string> ReloadAsync(TimeSpan? timeout = null)
    {
        var seen = _lines.Count;
        Hup();
        return await WaitForLineAsync(l => l.Contains("reload #") || l.Contains("reload refused"), timeout ?? TimeSpan.FromSeconds(30), seen);
    }

    private const int Sighup = 1;

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            LbProgram.Terminate(_process);
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(exit.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }
        }
        _process.Dispose();
    }
}

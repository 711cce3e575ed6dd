using System.Diagnostics;
using System.Runtime.InteropServices;
using Xunit;

namespace Lb.Host.Tests.Support;

/// <summary>The `lb` program run as a separate process: `dotnet lb.dll ...`.</summary>
public static class LbProgram
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string[] StdoutLines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();
    }

    /// <summary>
    /// lb.dll as the ProjectReference copies it next to the tests (with its runtimeconfig and deps files);
    /// otherwise the Host project's own build output for the same configuration.
    /// </summary>
    public static string DllPath
    {
        get
        {
            var here = Path.Combine(AppContext.BaseDirectory, "lb.dll");
            if (File.Exists(here) && File.Exists(Path.Combine(AppContext.BaseDirectory, "lb.runtimeconfig.json")))
                return here;
#if DEBUG
            const string configuration = "Debug";
#else
            const string configuration = "Release";
#endif
            return Path.Combine(RepositoryRoot, "src", "Host.cs", "bin", configuration, "net10.0", "lb.dll");
        }
    }

    /// <summary>The folder holding Lb.sln, found upwards from the test assembly.</summary>
    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Lb.sln")))
                    return dir.FullName;
            throw new InvalidOperationException("Lb.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Sample(string name) => Path.Combine(RepositoryRoot, "samples", name);

    /// <summary>
    /// Writes into <paramref name="directory"/>/tls the PEM files samples/three-apps.toml's [tls] names (relative to
    /// the config): a self-signed lb.crt and lb.key, and the same certificate as chain.crt.
    /// </summary>
    public static Lb.Host.Demo.SelfSignedCertificate.PemFiles WriteSampleCertificates(string directory)
    {
        var pem = Lb.Host.Demo.SelfSignedCertificate.Write(Path.Combine(directory, "tls"), "lb");
        File.Copy(pem.CertPath, Path.Combine(directory, "tls", "chain.crt"));
        return pem;
    }

    /// <summary>
    /// `dotnet lb.dll ARGS`, or with <paramref name="nativeBinary"/> that ahead-of-time compiled lb itself
    /// (see NativeAotTests).
    /// </summary>
    public static ProcessStartInfo StartInfo(IEnumerable<string> args, string? workingDirectory = null, string? nativeBinary = null)
    {
        var info = new ProcessStartInfo(nativeBinary ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepositoryRoot,
        };
        if (nativeBinary is null)
            info.ArgumentList.Add(DllPath);
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        return info;
    }

    /// <summary>Runs lb to completion, bounded by <paramref name="timeout"/> (then it is killed and the test fails).</summary>
    public static async Task<Result> RunAsync(IEnumerable<string> args, string? workingDirectory = null, TimeSpan? timeout = null, string? nativeBinary = null)
    {
        using var process = Process.Start(StartInfo(args, workingDirectory, nativeBinary))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            Assert.Fail($"lb {string.Join(' ', args)} did not exit in time");
        }
        return new Result(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// Asks a process we started to stop, by its PID, as `kill PID` (or systemd) would: SIGTERM. Not SIGINT:
    /// a shell without job control starts background jobs with SIGINT ignored, and children inherit that.
    /// </summary>
    public static void Terminate(Process process) => Signal(process, Sigterm);

    public const int Sigint = 2;
    public const int Sigterm = 15;

    /// <summary>Sends <paramref name="signal"/> to a process we started, by its PID; kills it if that fails.</summary>
    public static void Signal(Process process, int signal)
    {
        if (OperatingSystem.IsWindows() || kill(process.Id, signal) != 0)
            process.Kill();
    }

    /// <summary>
    /// As <see cref="StartInfo"/>, started through `env --default-signal=INT` (coreutils): lb gets SIGINT's
    /// default disposition even when this test process was started with SIGINT ignored, so Ctrl-C can be tested.
    /// </summary>
    public static ProcessStartInfo StartInfoWithSigint(IEnumerable<string> args)
    {
        var info = StartInfo(args);
        var lbArgs = info.ArgumentList.ToArray();
        info.FileName = "env";
        info.ArgumentList.Clear();
        info.ArgumentList.Add("--default-signal=INT");
        info.ArgumentList.Add("dotnet");
        foreach (var arg in lbArgs)
            info.ArgumentList.Add(arg);
        return info;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}

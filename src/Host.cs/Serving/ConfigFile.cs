using Lb.Rules;

namespace Lb.Host.Serving;

/// <summary>Reads a config file from disk and hands its text to the rules, which validate it.</summary>
public static class ConfigFile
{
    public static ConfigLoad Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var error = new ConfigError("file", 0, 0, $"cannot read {path}: {e.Message}", "check the path given with -c");
            return new ConfigLoad(null, [error]);
        }
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        return Rules.Rules.LoadConfig(text, baseDir, path => File.Exists(path));
    }

    /// <summary>Errors as `FILE:LINE:COL: keyword: message (hint: ...)`, the form editors jump to.</summary>
    public static void PrintErrors(string path, ConfigLoad load, TextWriter output)
    {
        foreach (var error in load.Errors)
            output.WriteLine($"{path}:{error}");
        output.WriteLine($"{load.Errors.Length} error(s) in {path}");
    }
}

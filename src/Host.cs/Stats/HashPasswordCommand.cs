using System.Security.Cryptography;
using System.Text;
using Lb.Rules;

namespace Lb.Host.Stats;

/// <summary>
/// `lb hash-password`: reads a password and prints the `pbkdf2-sha256$...` line for `[stats] password_hash` (or a
/// `password_file`). On a terminal the password is typed twice without echo; otherwise the first line of stdin
/// is read, so `printf '%s\n' "$PW" | lb hash-password` works in scripts.
/// </summary>
public static class HashPasswordCommand
{
    public static int Run(int iterations)
    {
        string? password;
        if (Console.IsInputRedirected)
        {
            password = Console.In.ReadLine();
        }
        else
        {
            password = ReadHidden("Password: ");
            if (password is not null && ReadHidden("Again: ") != password)
            {
                Console.Error.WriteLine("lb: the passwords differ");
                return 1;
            }
        }
        if (string.IsNullOrEmpty(password))
        {
            Console.Error.WriteLine("lb: no password given");
            return 1;
        }
        var hash = Password.Hash(password, RandomNumberGenerator.GetBytes(Password.SaltBytes), iterations);
        // The check lb check makes for the default user (`[stats] user`); a user of its own is checked there too.
        if (Password.FindWellKnown(hash, Keywords.Stats.User.Default) is { } known)
        {
            Console.Error.WriteLine($"lb: '{(known.Value == "" ? "(empty)" : known.Value)}' is a well-known password; lb check would refuse it");
            return 1;
        }
        Console.WriteLine(hash.ToString());
        if (!Console.IsOutputRedirected)
            Console.Error.WriteLine($"put it in the config as: {Keywords.Stats.PasswordHash.Name} = \"<the line above>\" under [{Keywords.Stats.PasswordHash.Section}]");
        return 0;
    }

    /// <summary>Reads a line from the terminal without echoing it; null at end of input.</summary>
    private static string? ReadHidden(string prompt)
    {
        Console.Error.Write(prompt);
        var text = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
                break;
            if (key.Key == ConsoleKey.Backspace)
            {
                if (text.Length > 0)
                    text.Length--;
            }
            else if (key.Modifiers.HasFlag(ConsoleModifiers.Control) && key.Key is ConsoleKey.D or ConsoleKey.C)
            {
                Console.Error.WriteLine();
                return null;
            }
            else if (!char.IsControl(key.KeyChar))
            {
                text.Append(key.KeyChar);
            }
        }
        Console.Error.WriteLine();
        return text.ToString();
    }
}

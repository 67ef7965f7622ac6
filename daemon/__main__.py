from tradectl.cli import console_main

console_main()

"""The login forms: the password step (bounded before anything is looked up) and the second
factor."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator

from accounts.models import User

USERNAME_MAX_LENGTH = User._meta.get_field("username").max_length


class LoginForm(AuthenticationForm):
    """Django's form, but an over-long username is a field error: Django only sets it as the
    widget's maxlength, so it reached authentication and the lockout log (a varchar(255)),
    which failed with a 500."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].validators.append(MaxLengthValidator(USERNAME_MAX_LENGTH))
        self.fields["password"].validators.append(MaxLengthValidator(4096))


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )
